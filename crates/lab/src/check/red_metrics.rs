//! Module 06, RED metrics two ways: the SDKs' HTTP server histogram
//! (`http_server_request_duration_seconds_*`, measured in each service) and the span metrics
//! the gateway derives from every span (`traces_span_metrics_*`), side by side on the
//! gateway's Prometheus exporter (:8889). The learner sends orders, reads rate, errors and
//! duration off the page as PromQL would compute them, and answers; the numbers are compared
//! with the page as it is now, the label name (fixed by the spanmetrics connector) as a
//! digest. Prometheus is optional in the lab, so the check reads :8889 itself.

use super::explorer::{ApiError, EXPORTER_METRICS, Metrics};
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "06",
    title: "RED metrics from the SDKs and from spans",
    page: "docs/workshop/06-red-metrics.md",
    questions: &[
        Question {
            key: "requests",
            text: "how many POST /orders has order-service served, by its SDK histogram?",
        },
        Question {
            key: "calls",
            text: "how many POST /orders server spans has order-service produced, by the span \
                   metrics?",
        },
        Question {
            key: "mean-ms",
            text: "the mean duration of order-service's POST /orders, in milliseconds, by the \
                   SDK histogram",
        },
        Question {
            key: "kind-label",
            text: "which label of the span metrics tells a server span from a client or an \
                   internal one?",
        },
    ],
};

pub const SDK: &str = "http_server_request_duration_seconds";
pub const SPANS: &str = "traces_span_metrics_calls_total";
/// The checkouts the exercise asks for before reading the page.
pub const ORDERS: f64 = 5.0;

const SDK_LABELS: [(&str, &str); 3] = [
    ("job", "order-service"),
    ("http_request_method", "POST"),
    ("http_route", "/orders"),
];
const SPAN_LABELS: [(&str, &str); 3] = [
    ("service_name", "order-service"),
    ("span_name", "POST /orders"),
    ("span_kind", "SPAN_KIND_SERVER"),
];

const KIND_LABEL_DIGEST: &str = "2e959b7229625cb9355216ed46b4fef8c3fb2068c8df07d2615f5490612aa451";

/// What the page says now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Red {
    pub requests: f64,
    pub seconds: f64,
    pub calls: f64,
}

impl Red {
    pub fn read(page: &Metrics) -> Self {
        let sum = |name: &str, labels: &[(&str, &str)]| page.samples(name, labels).sum::<f64>();
        Self {
            requests: sum(&format!("{SDK}_count"), &SDK_LABELS),
            seconds: sum(&format!("{SDK}_sum"), &SDK_LABELS),
            calls: sum(SPANS, &SPAN_LABELS),
        }
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.seconds / self.requests * 1000.0)
    }
}

/// A counter read a moment ago is still right when it is at most `behind` below the value now.
fn recent_count(given: &str, now: f64, behind: f64) -> bool {
    answer::normalise(given)
        .parse::<f64>()
        .is_ok_and(|n| now > 0.0 && n <= now && n >= now - behind)
}

/// A mean read a moment ago: within a quarter of the value now, or a millisecond.
fn close_mean(given: &str, now: Option<f64>) -> bool {
    let given = answer::normalise(given);
    let given = given.trim_end_matches("ms").trim();
    match (given.parse::<f64>(), now) {
        (Ok(g), Some(now)) => (g - now).abs() <= (now * 0.25).max(1.0),
        _ => false,
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let red = Red::read(&ctx.api.metrics(EXPORTER_METRICS).await?);
    let mut out = Vec::new();

    let what = format!("order-service has served at least {ORDERS} checkouts, by both sources");
    out.push(if red.requests >= ORDERS && red.calls >= ORDERS {
        Criterion::pass(
            what,
            format!("{} by the SDK, {} by the spans", red.requests, red.calls),
        )
    } else {
        Criterion::fail(
            what,
            format!(
                "{EXPORTER_METRICS} shows {} (SDK) and {} (spans) so far: send the orders of \
                 step 1 in {} and wait 10 s (both are exported every 5 s)",
                red.requests, red.calls, MODULE.page
            ),
        )
    });

    out.push(ctx.judge(
        &MODULE,
        "requests",
        |given| recent_count(given, red.requests, 2.0),
        &format!(
            "add up every {SDK}_count series with job=\"order-service\", \
             http_request_method=\"POST\", http_route=\"/orders\" (one per status code and \
             process); read it right before running the check"
        ),
    ));
    out.push(ctx.judge(
        &MODULE,
        "calls",
        |given| recent_count(given, red.calls, 2.0),
        &format!(
            "add up every {SPANS} series with service_name=\"order-service\", \
             span_name=\"POST /orders\", span_kind=\"SPAN_KIND_SERVER\" (one per status code)"
        ),
    ));
    out.push(ctx.judge(
        &MODULE,
        "mean-ms",
        |given| close_mean(given, red.mean_ms()),
        &format!(
            "the mean is {SDK}_sum / {SDK}_count over the same series (seconds: multiply by \
             1000)"
        ),
    ));
    out.push(ctx.judge(
        &MODULE,
        "kind-label",
        |given| answer::matches(MODULE.id, "kind-label", given, KIND_LABEL_DIGEST),
        "order-service's span metrics have series for POST /orders, POST (its calls out) and \
         order_service.* spans: which label differs between them besides span_name? Answer \
         with the label's name as :8889 shows it",
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="201",http_route="/orders",instance="a",job="order-service"} 5
http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="402",http_route="/orders",instance="a",job="order-service"} 1
http_server_request_duration_seconds_sum{http_request_method="POST",http_response_status_code="201",http_route="/orders",instance="a",job="order-service"} 0.5
http_server_request_duration_seconds_sum{http_request_method="POST",http_response_status_code="402",http_route="/orders",instance="a",job="order-service"} 0.1
http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="201",http_route="/payments",instance="b",job="payment-service"} 6
traces_span_metrics_calls_total{job="order-service",service_name="order-service",span_kind="SPAN_KIND_SERVER",span_name="POST /orders",status_code="STATUS_CODE_UNSET"} 6
traces_span_metrics_calls_total{job="order-service",service_name="order-service",span_kind="SPAN_KIND_CLIENT",span_name="POST",status_code="STATUS_CODE_UNSET"} 18
"#;

    #[test]
    fn both_sources_are_read_for_order_services_checkouts_only() {
        let red = Red::read(&Metrics(PAGE.to_owned()));
        assert_eq!(
            red,
            Red {
                requests: 6.0,
                seconds: 0.6,
                calls: 6.0
            }
        );
        assert!((red.mean_ms().unwrap() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn live_answers_allow_a_moment_of_traffic_and_rounding() {
        assert!(recent_count("6", 6.0, 2.0));
        assert!(recent_count("4", 6.0, 2.0));
        assert!(!recent_count("3", 6.0, 2.0));
        assert!(!recent_count("7", 6.0, 2.0));
        assert!(!recent_count("0", 0.0, 2.0), "nothing sent, nothing right");
        assert!(close_mean("100", Some(100.0)));
        assert!(close_mean("120 ms", Some(100.0)));
        assert!(
            !close_mean("0.1", Some(100.0)),
            "seconds are not milliseconds"
        );
        assert!(!close_mean("100", None));
    }

    #[test]
    fn the_kind_label_digest_is_the_connectors_label() {
        let connector = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../collector/src/connectors/spanmetrics/mod.rs"),
        )
        .unwrap();
        assert!(connector.contains("\"span.kind\""));
        assert!(answer::matches(
            "06",
            "kind-label",
            "span_kind",
            KIND_LABEL_DIGEST
        ));
    }
}
