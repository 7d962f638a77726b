//! Module 08, the too-many-spans pitfall: with inventory-service's planted `span_per_item`
//! and `n_plus_one_queries` on, a checkout of several lines shows two spans repeated once per
//! line. One is noise the instrumentation made (a span per loop iteration that lasts
//! microseconds and says nothing the reservation's attributes do not); the other is a signal
//! (a statement per line: a real N+1 query). The learner tells them apart, switches both off
//! and shows the same order's reservation in a handful of spans. Span names are fixed by
//! inventory-service's code and compared as digests; the traces are the learner's own.

use super::explorer::{ApiError, Trace, before_and_after_fix};
use super::tour::checkout_traces;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "08",
    title: "The too-many-spans pitfall",
    page: "docs/workshop/08-too-many-spans.md",
    questions: &[
        Question {
            key: "noise",
            text: "which span, repeated per line, is instrumentation noise?",
        },
        Question {
            key: "signal",
            text: "which span, repeated per line, shows a real performance problem?",
        },
    ],
};

pub const SCENARIOS: [&str; 2] = ["span_per_item", "n_plus_one_queries"];
/// Lines an order needs for the repetition to be plain to see.
pub const LINES: u64 = 4;

const NOISE_DIGEST: &str = "c4f252d67629ab79a44971a1925e8ad86b6122d4646147ecd68a35633cc05829";
const SIGNAL_DIGEST: &str = "c545b7c37ddd5812f172e494d639010cccf2d53653f5bafa4b9006456a03cb3b";

/// The reservation's line count, from inventory-service's reserve span.
fn lines(trace: &Trace) -> u64 {
    trace
        .spans
        .iter()
        .filter_map(|s| s.tag("inventory.line_count")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// How many spans of inventory-service are named `name` in `trace`.
fn count(trace: &Trace, name: &str) -> usize {
    trace
        .spans
        .iter()
        .filter(|s| s.operation == name && trace.service_of(s) == "inventory-service")
        .count()
}

fn inventory_spans(trace: &Trace) -> usize {
    trace
        .spans
        .iter()
        .filter(|s| trace.service_of(s) == "inventory-service")
        .count()
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let traces: Vec<Trace> = checkout_traces(ctx)
        .await?
        .into_iter()
        .filter(|t| lines(t) >= LINES)
        .collect();
    let (noisy, after) = before_and_after_fix(&traces, |t| SCENARIOS.iter().all(|s| t.met(s)));

    let what =
        format!("a checkout of {LINES}+ lines where inventory-service repeats spans per line");
    out.push(match noisy.first() {
        Some(t) => Criterion::pass(
            what,
            format!(
                "{} lines, {} inventory-service spans: http://127.0.0.1:16686/trace/{}",
                lines(t),
                inventory_spans(t),
                t.trace_id
            ),
        ),
        None => Criterion::fail(
            what,
            format!(
                "no checkout of {LINES} lines or more met both {} and {} in the last hour: \
                 `lab fault` must show both on inventory-service (make workshop starts with \
                 them), then send the order of step 1 in {}",
                SCENARIOS[0], SCENARIOS[1], MODULE.page
            ),
        ),
    });

    let hint_names = "open inventory-service's part of your trace: which span names appear once \
                      per line? (answer with the span's name as the explorer shows it)";
    out.push(ctx.judge(
        &MODULE,
        "noise",
        |given| answer::matches(MODULE.id, "noise", given, NOISE_DIGEST),
        &format!("{hint_names}; noise is the one whose spans last microseconds and only repeat what the reservation span says"),
    ));
    out.push(ctx.judge(
        &MODULE,
        "signal",
        |given| answer::matches(MODULE.id, "signal", given, SIGNAL_DIGEST),
        &format!("{hint_names}; the signal is the one that does work per line that one call could do for all"),
    ));

    for scenario in SCENARIOS {
        out.push(ctx.switched_off("inventory-service", scenario).await);
    }

    let what = format!(
        "after the fix, a checkout of {LINES}+ lines reads its products in one statement, with \
         no span per line"
    );
    let fixed = after.iter().find(|t| {
        SCENARIOS.iter().all(|s| !t.met(s))
            && count(t, "inventory.price_item") == 0
            && count(t, "SELECT products") == 1
    });
    out.push(match (noisy.first(), fixed) {
        (Some(before), Some(t)) => Criterion::pass(
            what,
            format!(
                "inventory-service: {} spans before, {} after: http://127.0.0.1:16686/trace/{}",
                inventory_spans(before),
                inventory_spans(t),
                t.trace_id
            ),
        ),
        (None, _) => Criterion::fail(what, "see the first criterion: the fix comes after it"),
        (Some(_), None) => Criterion::fail(
            what,
            format!(
                "no checkout of {LINES}+ lines since the last noisy one: switch both problems \
                 off, then send the order of step 1 again"
            ),
        ),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_names_are_inventory_services() {
        let store = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../inventory-service/src/store.rs"),
        )
        .unwrap();
        assert!(store.contains("info_span!(\"inventory.price_item\""));
        assert!(store.contains("db.statement(\"SELECT\", \"products\""));
        assert!(answer::matches(
            "08",
            "noise",
            "inventory.price_item",
            NOISE_DIGEST
        ));
        assert!(answer::matches(
            "08",
            "signal",
            "SELECT products",
            SIGNAL_DIGEST
        ));
    }
}
