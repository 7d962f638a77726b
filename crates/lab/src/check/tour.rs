//! Module 01, a guided tour of one checkout trace: the learner places an order, finds its
//! trace in the explorer and answers what only the trace can tell. The span count and the
//! slowest downstream service are compared with the learner's own checkout traces as the
//! explorer serves them now (they change with every build, so no answer is stored); the name
//! of the business span is fixed by order-service's code and compared as a digest.

use super::explorer::{Span, Trace, TraceQuery};
use super::{Context, Criterion, Module, Question, answer};
use crate::check::explorer::ApiError;

pub const MODULE: Module = Module {
    id: "01",
    title: "A tour of one checkout trace",
    page: "docs/workshop/01-tour.md",
    questions: &[
        Question {
            key: "spans",
            text: "how many spans does your checkout trace have?",
        },
        Question {
            key: "slowest",
            text: "which service that order-service calls took longest in your checkout?",
        },
        Question {
            key: "business-span",
            text: "what is the name of order-service's span for the checkout's business work?",
        },
    ],
};

/// The services order-service calls during a checkout.
pub const DOWNSTREAM: [&str; 3] = ["inventory-service", "fraud-check", "payment-service"];

const BUSINESS_SPAN_DIGEST: &str =
    "743accacd030be7cb032bca3cce72e9f274126c40c72ba7ebdb622f8e4207310";

/// Checkout traces of the last hour, newest first: traces with order-service's `POST /orders`
/// server span (as their root, or under the root span of a client such as `traffic`).
pub async fn checkout_traces(ctx: &Context) -> Result<Vec<Trace>, ApiError> {
    recent_checkouts(ctx, 100).await
}

/// The `limit` latest checkout traces, newest first.
pub async fn recent_checkouts(ctx: &Context, limit: usize) -> Result<Vec<Trace>, ApiError> {
    let mut traces = ctx
        .api
        .traces(&TraceQuery {
            service: "order-service",
            operation: Some("POST /orders"),
            limit,
            ..TraceQuery::default()
        })
        .await?;
    traces.retain(|t| checkout_span(t).is_some());
    traces.sort_by_key(|t| std::cmp::Reverse(checkout_span(t).map_or(0, |s| s.start_us)));
    Ok(traces)
}

/// order-service's `POST /orders` server span: the checkout as its server measured it.
pub fn checkout_span(trace: &Trace) -> Option<&Span> {
    trace.spans.iter().find(|s| {
        s.operation == "POST /orders"
            && trace.service_of(s) == "order-service"
            && s.tag("span.kind").as_deref() == Some("server")
    })
}

/// The downstream service whose server span lasted longest in `trace`, if all three are in it.
pub fn slowest_downstream(trace: &Trace) -> Option<&'static str> {
    DOWNSTREAM
        .iter()
        .map(|s| Some((*s, trace.server_span(s)?.duration_us)))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max_by_key(|(_, d)| *d)
        .map(|(s, _)| s)
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let traces = checkout_traces(ctx).await?;
    let mut out = Vec::new();
    let placed = "an order was placed and its trace is in the explorer";
    match traces.first() {
        Some(latest) => out.push(Criterion::pass(
            placed,
            format!(
                "{} checkout trace(s) in the last hour, the latest is http://127.0.0.1:16686/trace/{}",
                traces.len(),
                latest.trace_id
            ),
        )),
        None => out.push(Criterion::fail(
            placed,
            "no trace whose root is order-service's POST /orders yet: place an order with the \
             curl command of step 1 in docs/workshop/01-tour.md, then search for service \
             order-service at http://127.0.0.1:16686",
        )),
    }

    let no_trace = "place an order first; the answer is read from its trace";
    out.push(ctx.judge(
        &MODULE,
        "spans",
        |given| {
            let given = answer::normalise(given);
            !traces.is_empty() && traces.iter().any(|t| t.spans.len().to_string() == given)
        },
        if traces.is_empty() {
            no_trace
        } else {
            "open your trace in the explorer: its header shows the number of spans (any of your \
             checkout traces of the last hour counts)"
        },
    ));
    out.push(ctx.judge(
        &MODULE,
        "slowest",
        |given| {
            let given = answer::normalise(given);
            traces
                .iter()
                .filter_map(slowest_downstream)
                .any(|s| s == given)
        },
        if traces.is_empty() {
            no_trace
        } else {
            "in the waterfall, compare the bars of the server spans of inventory-service, \
             fraud-check and payment-service (answer with the service name)"
        },
    ));
    out.push(ctx.judge(
        &MODULE,
        "business-span",
        |given| answer::matches(MODULE.id, "business-span", given, BUSINESS_SPAN_DIGEST),
        "it is order-service's own span with order.id and customer.tier among its tags, named \
         <service>.<verb> as the lab's conventions say",
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_business_span_digest_is_order_services_span_name() {
        // The name order-service gives its checkout span: if that code renames it, this fails.
        let orders = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../order-service/src/routes/orders.rs"),
        )
        .unwrap();
        assert!(orders.contains("\"order_service.process_order\""));
        assert!(answer::matches(
            "01",
            "business-span",
            "order_service.process_order",
            BUSINESS_SPAN_DIGEST
        ));
    }
}
