//! Module 04, context propagation broken on one hop and repaired: the learner switches on
//! order-service's planted `drop_trace_context`, places an order, and finds that the checkout
//! is now two traces: order-service's without payment-service, and payment-service's own,
//! found again only through the business id both carry (`order.id`). Then they switch the
//! problem off and show one checkout is one trace again. The check reads the explorer (the
//! traces, the `fault.injected` event) and order-service's `/admin/faults`; the name of the
//! workload that started a trace of its own is a quiz answer compared as a digest.

use super::explorer::{ApiError, Trace, before_and_after_fix};
use super::tour::checkout_traces;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "04",
    title: "Context propagation broken on one hop, and repaired",
    page: "docs/workshop/04-propagation.md",
    questions: &[
        Question {
            key: "orphan",
            text: "the trace id of payment-service's trace for your broken checkout",
        },
        Question {
            key: "hop",
            text: "which workload started a trace of its own when the context was dropped?",
        },
    ],
};

pub const SCENARIO: &str = "drop_trace_context";

const HOP_DIGEST: &str = "13d00eb5df5e21b603c72ba47dae42dd4faa11da573ea9ff02d06eecb4840d38";

/// The `order.id` a trace's spans carry, if any.
pub fn order_id(trace: &Trace) -> Option<String> {
    trace.spans.iter().find_map(|s| s.tag("order.id"))
}

/// Whether payment-service's server span in `trace` is a child of a span in the same trace:
/// the hop kept its context.
fn payment_joined(trace: &Trace) -> bool {
    trace
        .server_span("payment-service")
        .and_then(|s| s.parent())
        .is_some_and(|p| trace.span(p).is_some())
}

/// The payment-service trace `id` when it is the orphan of one of `broken`'s checkouts: its
/// root is payment-service's server span, and it carries that checkout's `order.id`.
async fn orphan_of(
    ctx: &Context,
    id: &str,
    broken: &[&Trace],
) -> Result<Result<String, String>, ApiError> {
    let id = id.trim().to_lowercase();
    let Some(trace) = ctx.api.trace(&id).await? else {
        return Ok(Err(format!(
            "the explorer has no trace {id}: copy the trace id from the payment-service trace's \
             page (its URL ends with it)"
        )));
    };
    let root = trace.root();
    if root.is_some_and(|r| trace.service_of(r) == "fulfilment") {
        return Ok(Err(format!(
            "trace {id} is the order's fulfilment (module 18), whose payment capture records the \
             same order.id: search payment-service with the operation payment.authorize, the \
             checkout's span"
        )));
    }
    if root.is_none_or(|r| trace.service_of(r) != "payment-service") {
        return Ok(Err(format!(
            "trace {id} does not start in payment-service (it starts in {}): you want the trace \
             payment-service started on its own",
            root.map_or("nothing", |r| trace.service_of(r))
        )));
    }
    let order = order_id(&trace);
    match broken
        .iter()
        .find(|b| order.is_some() && order_id(b) == order)
    {
        Some(b) => Ok(Ok(format!(
            "payment-service's trace for order {}, whose checkout trace is {}",
            order.unwrap_or_default(),
            b.trace_id
        ))),
        None => Ok(Err(format!(
            "trace {id} is payment-service's, for order {}, but that is not one of your broken \
             checkouts: search payment-service, operation payment.authorize, in the explorer \
             with the tag order.id=<your order's id>",
            order.as_deref().unwrap_or("(none)")
        ))),
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let traces = checkout_traces(ctx).await?;
    let (broken, after) = before_and_after_fix(&traces, |t| t.met(SCENARIO));

    let what = format!(
        "a checkout with {SCENARIO} on: order-service's trace ends without payment-service"
    );
    out.push(match broken.first() {
        Some(t) if t.services().contains(&"payment-service") => Criterion::fail(
            what,
            format!(
                "checkout {} met {SCENARIO} but still has payment-service in it: that should not \
                 happen; tell the instructor",
                t.trace_id
            ),
        ),
        Some(t) => Criterion::pass(
            what,
            format!(
                "order {}: http://127.0.0.1:16686/trace/{} has {} span(s) and no payment-service",
                order_id(t).unwrap_or_default(),
                t.trace_id,
                t.spans.len()
            ),
        ),
        None => Criterion::fail(
            what,
            format!(
                "no checkout trace of the last hour met {SCENARIO}: run `lab fault order-service \
                 {SCENARIO}`, then place an order (step 1 of {})",
                MODULE.page
            ),
        ),
    });

    let what = format!("question orphan: {}", MODULE.questions[0].text);
    out.push(match ctx.answers.get("orphan") {
        None => Criterion::fail(
            what,
            "not answered yet: lab check 04 --answer orphan=TRACE_ID (find it by searching \
             payment-service, operation payment.authorize, with the tag order.id=<your \
             order's id>)",
        ),
        Some(_) if broken.is_empty() => {
            Criterion::fail(what, "break the hop and place an order first (see above)")
        }
        Some(given) => match orphan_of(ctx, &answer::normalise(given), &broken).await? {
            Ok(detail) => Criterion::pass(what, detail),
            Err(hint) => Criterion::fail(what, hint),
        },
    });

    out.push(ctx.judge(
        &MODULE,
        "hop",
        |given| answer::matches(MODULE.id, "hop", given, HOP_DIGEST),
        "which service's span is the root of the second trace? (answer with the service name)",
    ));

    out.push(ctx.switched_off("order-service", SCENARIO).await);

    let what = "after the repair, a checkout is one trace again, payment-service's span inside it";
    let repaired = after.iter().find(|t| payment_joined(t));
    out.push(match repaired {
        Some(t) if !broken.is_empty() => {
            Criterion::pass(what, format!("http://127.0.0.1:16686/trace/{}", t.trace_id))
        }
        _ if broken.is_empty() => {
            Criterion::fail(what, "break the hop first: the repair comes after it")
        }
        _ => Criterion::fail(
            what,
            "no checkout since your last broken one has payment-service's span under \
             order-service's: switch the problem off, then place another order",
        ),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_that_loses_context_is_the_payment_call() {
        let read = |file: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../order-service/src")
                    .join(file),
            )
            .unwrap()
        };
        // The flag goes to the payment call, whose bypass of the traced client drops it.
        assert!(read("routes/orders.rs").contains("mark_injected(\"drop_trace_context\")"));
        assert!(read("clients.rs").contains("if drop_trace_context {"));
        assert!(answer::matches("04", "hop", "payment-service", HOP_DIGEST));
    }
}
