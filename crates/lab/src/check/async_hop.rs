//! Module 18, the asynchronous hop: a created order's event goes through the outbox and the
//! queue to the fulfilment Lambda, whose trace is its own and links back to the order's
//! `send orders` span. The learner follows that link both ways, then switches on
//! order-service's planted `drop_message_context` (the relay sends the event without its
//! trace context), finds the fulfilment of an order placed then only by the business id it
//! records (`order.id`), and switches the problem off again. The check reads the explorer
//! (traces, the links API, the `fault.injected` event) and order-service's `/admin/faults`;
//! the name of the span the fulfilment links to is a quiz answer compared as a digest.

use super::explorer::{ApiError, Trace, before_and_after_fix};
use super::tour::checkout_traces;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "18",
    title: "The asynchronous hop: a queue, a batch and span links",
    page: "docs/workshop/18-async-hop.md",
    questions: &[
        Question {
            key: "fulfilment",
            text: "the trace id of the fulfilment that handled one of your orders",
        },
        Question {
            key: "linked_span",
            text: "which span of the order's trace does the fulfilment's link point to? (its name)",
        },
        Question {
            key: "orphan",
            text: "the trace id of the fulfilment of an order placed with drop_message_context on",
        },
    ],
};

pub const SCENARIO: &str = "drop_message_context";

const LINKED_SPAN_DIGEST: &str = "98a636a50548d392e974df4e5d0951fe823b4aa95325aaa68501146e92d8b825";

/// How long after its send an order's fulfilment has surely run (batching window 1 s, a cold
/// start, export): an order older than this with nothing linking to it never will have.
const FULFILMENT_WITHIN_US: u64 = 15_000_000;

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The order's `send orders` span, if its event was sent.
fn send_span(trace: &Trace) -> Option<&super::explorer::Span> {
    trace
        .spans
        .iter()
        .find(|s| s.operation == "send orders" && trace.service_of(s) == "order-service")
}

fn order_id(trace: &Trace) -> Option<String> {
    trace.spans.iter().find_map(|s| s.tag("order.id"))
}

/// The fulfilment traces linking into `trace`.
async fn fulfilments_of(ctx: &Context, trace: &Trace) -> Result<Vec<String>, ApiError> {
    Ok(ctx
        .api
        .linked_from(&trace.trace_id)
        .await?
        .into_iter()
        .filter(|l| l.root_service == "fulfilment")
        .map(|l| l.trace_id)
        .collect())
}

/// Whether `id` is a fulfilment trace (its root is the fulfilment's `process orders`), and
/// the `order.id`s it fulfilled and the traces its spans link to.
async fn fulfilment(
    ctx: &Context,
    id: &str,
) -> Result<Result<(Vec<String>, Vec<String>), String>, ApiError> {
    let id = answer::normalise(id);
    let Some(trace) = ctx.api.trace(&id).await? else {
        return Ok(Err(format!(
            "the explorer has no trace {id}: copy the trace id from the fulfilment trace's page \
             (its URL ends with it)"
        )));
    };
    let root = trace.root();
    if root.is_none_or(|r| trace.service_of(r) != "fulfilment" || r.operation != "process orders") {
        return Ok(Err(format!(
            "trace {id} is not a fulfilment: its root is {}, not fulfilment's `process orders`",
            root.map_or("missing".to_owned(), |r| format!(
                "{}: {}",
                trace.service_of(r),
                r.operation
            ))
        )));
    }
    let orders = trace
        .spans
        .iter()
        .filter_map(|s| s.tag("order.id"))
        .collect();
    let linked = trace
        .spans
        .iter()
        .flat_map(|s| &s.references)
        .filter(|r| r.ref_type == "FOLLOWS_FROM")
        .map(|r| r.trace_id.clone())
        .collect();
    Ok(Ok((orders, linked)))
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let mut traces = checkout_traces(ctx).await?;
    traces.retain(|t| send_span(t).is_some());
    let (broken, after) = before_and_after_fix(&traces, |t| {
        send_span(t).is_some_and(|s| s.faults().iter().any(|f| f == SCENARIO))
    });
    // Orders before the problem was first switched on.
    let first_broken_start = broken
        .iter()
        .filter_map(|t| send_span(t).map(|s| s.start_us))
        .min()
        .unwrap_or(u64::MAX);
    let healthy: Vec<&Trace> = traces
        .iter()
        .filter(|t| send_span(t).is_some_and(|s| s.start_us < first_broken_start))
        .collect();

    let what = "an order's trace is linked from its fulfilment";
    let mut linked = None;
    for trace in healthy.iter().take(20) {
        if let Some(f) = fulfilments_of(ctx, trace).await?.into_iter().next() {
            linked = Some((trace.trace_id.clone(), f));
            break;
        }
    }
    out.push(match &linked {
        Some((order, fulfilment)) => Criterion::pass(
            what,
            format!(
                "http://127.0.0.1:16686/trace/{order} lists fulfilment trace {fulfilment} under Linked from"
            ),
        ),
        None => Criterion::fail(
            what,
            "no created order of the last hour has a fulfilment linking to it yet: place an \
             order (step 1), wait a few seconds, and open its trace",
        ),
    });

    let what = format!("question fulfilment: {}", MODULE.questions[0].text);
    out.push(match ctx.answers.get("fulfilment") {
        None => Criterion::fail(
            what,
            "not answered yet: lab check 18 --answer fulfilment=TRACE_ID (open your order's \
             trace and follow Linked from)",
        ),
        Some(given) => match fulfilment(ctx, given).await? {
            Err(hint) => Criterion::fail(what, hint),
            Ok((_, targets)) => {
                let orders: Vec<&str> = traces.iter().map(|t| t.trace_id.as_str()).collect();
                match targets.iter().find(|t| orders.contains(&t.as_str())) {
                    Some(order) => {
                        Criterion::pass(what, format!("it links to your order's trace {order}"))
                    }
                    None => Criterion::fail(
                        what,
                        "that fulfilment links to no order trace of the last hour: take one \
                         from an order you placed",
                    ),
                }
            }
        },
    });

    out.push(ctx.judge(
        &MODULE,
        "linked_span",
        |given| answer::matches(MODULE.id, "linked_span", given, LINKED_SPAN_DIGEST),
        "open the fulfilment's `process orders` span: its link (FOLLOWS_FROM) names a span of \
         order-service; which one?",
    ));

    let what = format!("an order placed with {SCENARIO} on: no fulfilment links to it");
    let now = now_us();
    let settled: Vec<&&Trace> = broken
        .iter()
        .filter(|t| send_span(t).is_some_and(|s| s.start_us + FULFILMENT_WITHIN_US < now))
        .collect();
    let mut unlinked = None;
    for trace in &settled {
        if fulfilments_of(ctx, trace).await?.is_empty() {
            unlinked = Some(trace.trace_id.clone());
            break;
        }
    }
    out.push(match (&unlinked, broken.is_empty()) {
        (Some(order), _) => Criterion::pass(
            what,
            format!("http://127.0.0.1:16686/trace/{order}: its send span is marked, nothing links back"),
        ),
        (None, true) => Criterion::fail(
            what,
            format!(
                "no order of the last hour was sent with {SCENARIO}: run `lab fault order-service \
                 {SCENARIO}`, then place an order (step 3 of {})",
                MODULE.page
            ),
        ),
        (None, false) if settled.is_empty() => Criterion::fail(
            what,
            "your broken order is only seconds old: give its fulfilment 15 s to run, then check again",
        ),
        (None, false) => Criterion::fail(
            what,
            format!(
                "every order sent with {SCENARIO} still has a fulfilment linking to it: that \
                 should not happen; tell the instructor"
            ),
        ),
    });

    let what = format!("question orphan: {}", MODULE.questions[2].text);
    out.push(match ctx.answers.get("orphan") {
        None => Criterion::fail(
            what,
            "not answered yet: lab check 18 --answer orphan=TRACE_ID (search service fulfilment \
             with the tag order.id=<your broken order's id>)",
        ),
        Some(_) if broken.is_empty() => {
            Criterion::fail(what, "break the hop and place an order first (see above)")
        }
        Some(given) => match fulfilment(ctx, given).await? {
            Err(hint) => Criterion::fail(what, hint),
            Ok((orders, _)) => {
                let broken_orders: Vec<String> =
                    broken.iter().filter_map(|t| order_id(t)).collect();
                match orders.iter().find(|o| broken_orders.contains(o)) {
                    Some(order) => Criterion::pass(
                        what,
                        format!("the fulfilment of order {order}, found by its order.id"),
                    ),
                    None => Criterion::fail(
                        what,
                        "that fulfilment handled none of the orders you placed with the \
                         problem on: search fulfilment with the tag order.id=<that order's id>",
                    ),
                }
            }
        },
    });

    out.push(ctx.switched_off("order-service", SCENARIO).await);

    let what = "after the repair, a new order is linked from its fulfilment again";
    let mut repaired = None;
    for trace in after.iter().take(20) {
        if let Some(f) = fulfilments_of(ctx, trace).await?.into_iter().next() {
            repaired = Some((trace.trace_id.clone(), f));
            break;
        }
    }
    out.push(match (repaired, broken.is_empty()) {
        (Some((order, fulfilment)), false) => Criterion::pass(
            what,
            format!("http://127.0.0.1:16686/trace/{order} ← fulfilment {fulfilment}"),
        ),
        (_, true) => Criterion::fail(what, "break the hop first: the repair comes after it"),
        (None, false) => Criterion::fail(
            what,
            "no order since your last broken one has a fulfilment linking to it: switch the \
             problem off, place another order and give it a few seconds",
        ),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_span_is_the_send() {
        assert!(answer::matches(
            "18",
            "linked_span",
            "send orders",
            LINKED_SPAN_DIGEST
        ));
        assert!(answer::matches(
            "18",
            "linked_span",
            " `Send Orders` ",
            LINKED_SPAN_DIGEST
        ));
        // The span the outbox relay makes is the one named here.
        let relay = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../telemetry/src/messaging.rs"),
        )
        .unwrap();
        assert!(relay.contains("format!(\"send {}\", self.destination)"));
    }
}
