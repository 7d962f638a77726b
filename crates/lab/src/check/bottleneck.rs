//! Module 09, a latency bottleneck found in traces and fixed, HotROD style: under concurrent
//! load with order-service's planted `db_single_connection` on, checkouts queue for the
//! orders database's one connection, and the traces show where the time goes (a `wait for
//! connection` span). The learner names the span, switches the problem off, sends the same
//! load again and shows the checkout p99 at least halved. Both p99s are computed from the
//! learner's own checkout traces in the explorer (the planted ones and those after the fix);
//! the span's name is fixed by order-service's code and compared as a digest.

use super::explorer::{ApiError, Trace, before_and_after_fix};
use super::tour::{checkout_span, recent_checkouts};
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "09",
    title: "A latency bottleneck found in traces and fixed",
    page: "docs/workshop/09-bottleneck.md",
    questions: &[Question {
        key: "wait",
        text: "in which span do slow checkouts spend most of their time?",
    }],
};

pub const SCENARIO: &str = "db_single_connection";
/// The second bottleneck, behind the first: the payment waits for the fraud check's verdict.
pub const SEQUENTIAL: &str = "sequential_downstream_calls";
pub const WAIT_SPAN: &str = "wait for connection";
/// Checkouts each side of the fix needs for its p99 to mean something.
pub const SAMPLE: usize = 20;

const WAIT_DIGEST: &str = "3459979029dcae69e7aba33f9b71863be0a6713c28a63b172c20035f4ec343f8";

/// The checkout's duration in milliseconds, as order-service's server span measured it.
fn millis(trace: &Trace) -> f64 {
    checkout_span(trace).map_or(0.0, |s| s.duration_us as f64 / 1000.0)
}

/// The nearest-rank 99th percentile of the traces' durations, in milliseconds.
pub fn p99(traces: &[&Trace]) -> f64 {
    let mut ms: Vec<f64> = traces.iter().map(|t| millis(t)).collect();
    ms.sort_by(f64::total_cmp);
    let rank = ((0.99 * ms.len() as f64).ceil() as usize).clamp(1, ms.len().max(1));
    ms.get(rank - 1).copied().unwrap_or(0.0)
}

/// Whether the fraud check and the payment ran at the same time in `trace`: their server
/// spans overlap. `None` when the trace lacks one of them.
fn overlapping(trace: &Trace) -> Option<bool> {
    let fraud = trace.server_span("fraud-check")?;
    let payment = trace.server_span("payment-service")?;
    let end = |s: &super::explorer::Span| s.start_us + s.duration_us;
    Some(fraud.start_us < end(payment) && payment.start_us < end(fraud))
}

/// The longest `wait for connection` span in the trace, in milliseconds.
fn longest_wait(trace: &Trace) -> Option<f64> {
    trace
        .spans
        .iter()
        .filter(|s| s.operation == WAIT_SPAN)
        .map(|s| s.duration_us as f64 / 1000.0)
        .max_by(f64::total_cmp)
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let traces = recent_checkouts(ctx, 1000).await?;
    let (planted, after) = before_and_after_fix(&traces, |t| t.met(SCENARIO));
    let waited: Vec<f64> = planted.iter().filter_map(|t| longest_wait(t)).collect();

    let what = format!(
        "{SAMPLE}+ checkouts under concurrent load with {SCENARIO} on, some of them queued"
    );
    out.push(if planted.len() >= SAMPLE && !waited.is_empty() {
        Criterion::pass(
            what,
            format!(
                "{} checkouts, p99 {:.0} ms; {} waited, the longest {:.0} ms",
                planted.len(),
                p99(&planted),
                waited.len(),
                waited.iter().copied().fold(0.0, f64::max)
            ),
        )
    } else {
        Criterion::fail(
            what,
            format!(
                "{} checkout(s) met {SCENARIO}, {} of them queued: with it on (`lab fault`; \
                 make workshop starts with it), run the load of step 1 in {} (several \
                 checkouts at once)",
                planted.len(),
                waited.len(),
                MODULE.page
            ),
        )
    });

    out.push(ctx.judge(
        &MODULE,
        "wait",
        |given| answer::matches(MODULE.id, "wait", given, WAIT_DIGEST),
        "open one of the slowest checkouts (sort the search by longest first) and find the \
         span that covers most of order-service's time before any statement runs",
    ));

    out.push(ctx.switched_off("order-service", SCENARIO).await);

    let what = format!(
        "after the fix, the same load's checkout p99 is at most half of before ({SAMPLE}+ \
         checkouts each side)"
    );
    let fixed: Vec<&Trace> = after.into_iter().filter(|t| !t.met(SCENARIO)).collect();
    out.push(if planted.len() < SAMPLE {
        Criterion::fail(
            what,
            "see the first criterion: the fix is judged against it",
        )
    } else if fixed.len() < SAMPLE {
        Criterion::fail(
            what,
            format!(
                "{} checkout(s) since the fix: switch the problem off and run the same load again",
                fixed.len()
            ),
        )
    } else {
        let (before, now) = (p99(&planted), p99(&fixed));
        let detail = format!("p99 {before:.0} ms before, {now:.0} ms after");
        if now <= before / 2.0 {
            Criterion::pass(what, detail)
        } else {
            Criterion::fail(
                what,
                format!(
                    "{detail}: run the same load before and after (step 1's command), and check \
                     that `lab fault` shows the problem off"
                ),
            )
        }
    });

    out.push(ctx.switched_off("order-service", SEQUENTIAL).await);
    let (staircase, after) = before_and_after_fix(&traces, |t| t.met(SEQUENTIAL));
    let what = "after that fix, a checkout where the fraud check and the payment overlap";
    let concurrent = after
        .iter()
        .find(|t| !t.met(SEQUENTIAL) && overlapping(t) == Some(true));
    out.push(match (staircase.first(), concurrent) {
        (Some(before), Some(t)) => Criterion::pass(
            what,
            format!(
                "checkout {:.0} ms with the calls in a row, {:.0} ms with them side by side: \
                 http://127.0.0.1:16686/trace/{}",
                millis(before),
                millis(t),
                t.trace_id
            ),
        ),
        (None, _) => Criterion::fail(
            what,
            format!(
                "no checkout of the last hour met {SEQUENTIAL}: with it on (make workshop starts \
                 with it), place an order and look at its waterfall (step 4 of {})",
                MODULE.page
            ),
        ),
        (Some(_), None) => Criterion::fail(
            what,
            "switch it off, then place an order: the two calls' bars must overlap",
        ),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout(start_us: u64, duration_us: u64, planted: bool) -> Trace {
        let logs = if planted {
            r#"[{"fields":[{"key":"event","value":"fault.injected"},{"key":"fault.name","value":"db_single_connection"}]}]"#
        } else {
            "[]"
        };
        serde_json::from_str(&format!(
            r#"{{"traceID":"t{start_us}","processes":{{"p":{{"serviceName":"order-service"}}}},
               "spans":[{{"spanID":"s","operationName":"POST /orders","startTime":{start_us},
               "duration":{duration_us},"processID":"p","logs":{logs},
               "tags":[{{"key":"span.kind","value":"server"}}]}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn p99_is_the_nearest_rank_of_the_checkout_spans() {
        let traces: Vec<Trace> = (1..=100).map(|i| checkout(i, i * 1000, false)).collect();
        let all: Vec<&Trace> = traces.iter().collect();
        assert_eq!(p99(&all), 99.0);
        assert_eq!(p99(&all[..1]), 1.0);
        assert_eq!(p99(&[]), 0.0);
    }

    #[test]
    fn the_fix_is_judged_on_checkouts_after_the_last_planted_one() {
        let traces = vec![
            checkout(40, 1, false),
            checkout(30, 1, true),
            checkout(20, 1, false),
            checkout(10, 1, true),
        ];
        let (before, after) = before_and_after_fix(&traces, |t| t.met(SCENARIO));
        let ids = |v: &[&Trace]| v.iter().map(|t| t.trace_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&before), ["t30", "t10"]);
        assert_eq!(ids(&after), ["t40"]);
        let (before, after) = before_and_after_fix(&traces[..1], |t| t.met(SCENARIO));
        assert!(before.is_empty() && after.is_empty());
    }

    #[test]
    fn the_wait_span_is_order_services() {
        let db = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../telemetry/src/db.rs"),
        )
        .unwrap();
        assert!(db.contains("CONNECTION_WAIT_SPAN: &str = \"wait for connection\""));
        assert!(answer::matches(
            "09",
            "wait",
            "wait for connection",
            WAIT_DIGEST
        ));
    }
}
