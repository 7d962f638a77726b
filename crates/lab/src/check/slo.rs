//! Module 14, an SLO burn-rate alert firing under a fault: order-service's availability SLO
//! (99.5 %) has the SRE workbook's multi-window burn-rate alerts in
//! `prometheus/rules/slo.yml`, evaluated by the lab's Prometheus. The learner makes payments
//! fail, sends traffic, watches the fast-burn alert fire, reads the burn rate and turns it
//! into hours of budget left, then removes the fault. The alert's state and the burn rate are
//! read from Prometheus's API as it is now; the alert's name as a digest.

use super::explorer::{ApiError, PROMETHEUS};
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "14",
    title: "An SLO burn-rate alert firing under a fault",
    page: "docs/workshop/14-slo-burn-rate.md",
    questions: &[
        Question {
            key: "alert",
            text: "which alert fired?",
        },
        Question {
            key: "burn-rate",
            text: "order-service's error budget burn rate over the last hour, now",
        },
        Question {
            key: "hours",
            text: "at that burn rate, in how many hours is a whole 30-day error budget spent?",
        },
    ],
};

pub const ALERT: &str = "OrderServiceErrorBudgetFastBurn";
pub const BURN_RATE: &str = r#"job:slo_error_budget_burn_rate:rate1h{job="order-service"}"#;
/// Hours in the SLO period.
const PERIOD_HOURS: f64 = 30.0 * 24.0;

const ALERT_DIGEST: &str = "0243a9be4221207a7718f47428a43ea25569f279faa79259e62bdc465b68a0f9";

/// Whether `given` is within `share` of `now` (the value moves while the learner reads it).
fn close(given: &str, now: Option<f64>, share: f64) -> bool {
    let given = answer::normalise(given)
        .trim_end_matches('h')
        .trim()
        .parse::<f64>();
    match (given, now) {
        (Ok(given), Some(now)) if now > 0.0 => (given - now).abs() <= share * now,
        _ => false,
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let alerts = match ctx.api.alerts().await {
        Ok(alerts) => alerts,
        Err(e @ ApiError::PrometheusNotRunning) => {
            out.push(Criterion::fail("Prometheus is running", e.to_string()));
            return Ok(out);
        }
        Err(e) => return Err(e),
    };
    // Fired at some point in the last hour: the alert resolves a few minutes after the fault
    // is removed, and the learner may check after that.
    let fired = ctx
        .api
        .query(&format!(
            r#"max_over_time(ALERTS{{alertname="{ALERT}",alertstate="firing"}}[1h])"#
        ))
        .await?
        .is_some();
    let now = alerts
        .iter()
        .find(|a| a.labels.get("alertname").map(String::as_str) == Some(ALERT))
        .map_or("inactive", |a| a.state.as_str());
    let what = format!("{ALERT} fired in Prometheus");
    out.push(if fired {
        Criterion::pass(what, format!("{now} now: {PROMETHEUS}/alerts"))
    } else if now == "pending" {
        Criterion::fail(
            what,
            "it is pending: keep the traffic going a little longer",
        )
    } else {
        Criterion::fail(
            what,
            format!(
                "it has not fired in the last hour: make payments fail (step 2 of {}) and keep \
                 checkouts coming while you watch {PROMETHEUS}/alerts",
                MODULE.page
            ),
        )
    });

    out.push(ctx.judge(
        &MODULE,
        "alert",
        |given| answer::matches(MODULE.id, "alert", given, ALERT_DIGEST),
        &format!("the alert's name as {PROMETHEUS}/alerts shows it"),
    ));
    let burn = ctx.api.query(BURN_RATE).await?;
    out.push(ctx.judge(
        &MODULE,
        "burn-rate",
        |given| close(given, burn, 0.2),
        &match burn {
            Some(_) => format!(
                "query {BURN_RATE} in {PROMETHEUS}/graph and answer its value (it moves: \
                 within 20 % of now counts)"
            ),
            None => "Prometheus has no burn rate for order-service yet: send traffic".to_owned(),
        },
    ));
    out.push(ctx.judge(
        &MODULE,
        "hours",
        |given| close(given, burn.map(|b| PERIOD_HOURS / b), 0.25),
        "a burn rate of 1 spends the budget in exactly the SLO period (30 days = 720 h); a burn \
         rate of b spends it b times faster",
    ));

    let what = "payment-service's faults are cleared again";
    let payment = crate::fault::workload("payment-service").expect("a workload of the lab");
    out.push(
        match crate::fault::get(&crate::fault::client(), payment).await {
            Ok(f) if f.error_rate == 0.0 && f.scenarios.is_empty() => Criterion::pass(what, ""),
            Ok(_) => Criterion::fail(what, "lab fault payment-service --clear"),
            Err(e) => Criterion::fail(what, e.to_string()),
        },
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_numbers_are_accepted_near_the_value_now() {
        assert!(close("30", Some(28.0), 0.2));
        assert!(close(" 24h ", Some(24.0), 0.25));
        assert!(!close("10", Some(28.0), 0.2));
        assert!(!close("30", None, 0.2));
        assert!(!close("thirty", Some(30.0), 0.2));
    }

    #[test]
    fn the_alert_is_the_fast_burn_of_the_rules() {
        let rules = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prometheus/rules/slo.yml"),
        )
        .unwrap();
        assert!(rules.contains(&format!("- alert: {ALERT}")));
        assert!(rules.contains("record: job:slo_error_budget_burn_rate:rate1h"));
        assert!(answer::matches("14", "alert", ALERT, ALERT_DIGEST));
    }
}
