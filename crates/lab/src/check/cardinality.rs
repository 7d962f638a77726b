//! Module 07, the cardinality pitfall: with order-service's planted `customer_id_metric_label`
//! on, `orders.created` carries `customer.id`, and every customer becomes a series of its own
//! on the gateway's Prometheus exporter (:8889). The learner sends traffic from many customers,
//! counts the series, names the label, switches the problem off and shows that checkouts after
//! the fix are counted without it. The series count is compared with the page as it is now;
//! the label's name (fixed by the code and the exporter's naming) as a digest.

use std::collections::BTreeSet;

use super::explorer::{ApiError, EXPORTER_METRICS, Metrics, before_and_after_fix};
use super::tour::checkout_traces;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "07",
    title: "The cardinality pitfall: a per-customer label",
    page: "docs/workshop/07-cardinality.md",
    questions: &[
        Question {
            key: "series",
            text: "how many orders_created_total series does :8889 show now?",
        },
        Question {
            key: "label",
            text: "which label multiplies them?",
        },
    ],
};

pub const SCENARIO: &str = "customer_id_metric_label";
pub const METRIC: &str = "orders_created_total";
/// Distinct customers on the page before the pitfall counts as seen.
pub const CUSTOMERS: usize = 20;

const LABEL_DIGEST: &str = "19a0a83bd22976f4f7d95754c9638ea3808e97865642a881eb6136b55af69d65";

/// The series of `METRIC` on the page: their label text, one entry per line.
fn series(page: &Metrics) -> Vec<&str> {
    page.0
        .lines()
        .filter_map(|l| l.strip_prefix(METRIC)?.strip_prefix('{'))
        .filter_map(|rest| rest.rsplit_once('}').map(|(labels, _)| labels))
        .collect()
}

/// The values of label `key` in a series' label text.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    labels[start..].split('"').next()
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let page = ctx.api.metrics(EXPORTER_METRICS).await?;
    let all = series(&page);
    let customers: BTreeSet<&str> = all.iter().filter_map(|l| label(l, "customer_id")).collect();

    let what = format!("{METRIC} has a series per customer on :8889 (at least {CUSTOMERS})");
    out.push(if customers.len() >= CUSTOMERS {
        Criterion::pass(
            what,
            format!("{} series for {} customers", all.len(), customers.len()),
        )
    } else {
        Criterion::fail(
            what,
            format!(
                "{} customer(s) so far: with {SCENARIO} on (`lab fault` shows it; `make workshop` \
                 starts with it), send checkouts from many customers: traffic --scenario \
                 checkout --requests 80 --rate 20",
                customers.len()
            ),
        )
    });

    let count = all.len();
    out.push(ctx.judge(
        &MODULE,
        "series",
        |given| {
            answer::normalise(given).parse::<usize>().is_ok_and(|n| {
                // The page moves while traffic runs: a count taken a moment ago is right.
                n.abs_diff(count) <= 3.max(count / 10) && customers.len() >= CUSTOMERS
            })
        },
        &format!(
            "the page has {} now: count the lines that start with {METRIC}{{ (step 2's grep -c)",
            if customers.len() >= CUSTOMERS {
                "a different number"
            } else {
                "too few customers"
            }
        ),
    ));
    out.push(ctx.judge(
        &MODULE,
        "label",
        |given| {
            answer::matches(
                MODULE.id,
                "label",
                &answer::normalise(given).replace('.', "_"),
                LABEL_DIGEST,
            )
        },
        "compare two lines of the metric: which label's value differs between almost every line?",
    ));

    out.push(ctx.switched_off("order-service", SCENARIO).await);

    let traces = checkout_traces(ctx).await?;
    let (labelled, after) = before_and_after_fix(&traces, |t| t.met(SCENARIO));
    let what = "a checkout after the fix was counted without customer_id";
    out.push(match after.iter().find(|t| !t.met(SCENARIO)) {
        Some(t) if !labelled.is_empty() => {
            Criterion::pass(what, format!("http://127.0.0.1:16686/trace/{}", t.trace_id))
        }
        _ if labelled.is_empty() => Criterion::fail(
            what,
            format!("no checkout of the last hour met {SCENARIO} yet: see the first criterion"),
        ),
        _ => Criterion::fail(
            what,
            "switch the problem off, then place an order: its trace must not carry the \
             fault.injected event",
        ),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_labels_are_read_off_the_exposition() {
        let page = Metrics(
            "# TYPE orders_created_total counter\n\
             orders_created_total{customer_id=\"c-1\",job=\"order-service\"} 2\n\
             orders_created_total{job=\"order-service\"} 5\n\
             orders_created_totals{customer_id=\"x\"} 1\n"
                .to_owned(),
        );
        let all = series(&page);
        assert_eq!(all.len(), 2);
        assert_eq!(label(all[0], "customer_id"), Some("c-1"));
        assert_eq!(label(all[1], "customer_id"), None);
        assert_eq!(label(all[0], "job"), Some("order-service"));
    }

    #[test]
    fn the_label_is_customer_id_as_prometheus_names_it() {
        let metrics = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../order-service/src/metrics.rs"),
        )
        .unwrap();
        assert!(metrics.contains("KeyValue::new(\"customer.id\""));
        assert!(answer::matches("07", "label", "customer_id", LABEL_DIGEST));
    }
}
