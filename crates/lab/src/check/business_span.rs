//! Module 03, a manual business span: the learner wraps payment-service's validation of a
//! payment request in a span named `payment.validate` carrying `payment.currency` and
//! `payment.valid`, rebuilds with `make run` and sends an order. The check looks for that
//! span where a person would: in the explorer, inside a real checkout, under payment-service's
//! `POST /payments` server span; and for the span in the learner's source.

use super::explorer::{ApiError, Span, Trace, TraceQuery};
use super::{Context, Criterion, Module};

pub const MODULE: Module = Module {
    id: "03",
    title: "A manual business span with attributes",
    page: "docs/workshop/03-business-span.md",
    questions: &[],
};

pub const SERVICE: &str = "payment-service";
pub const SPAN: &str = "payment.validate";
pub const ATTRIBUTES: [&str; 2] = ["payment.currency", "payment.valid"];
/// The file the exercise changes, relative to the checkout.
pub const SOURCE: &str = "crates/payment-service/src/routes/payments.rs";

/// Whether `span` sits where the exercise puts it: a child of payment-service's
/// `POST /payments` server span, in a trace order-service started.
fn in_checkout(trace: &Trace, span: &Span) -> bool {
    let parent = span.parent().and_then(|p| trace.span(p));
    let under_server = parent.is_some_and(|p| {
        trace.service_of(p) == SERVICE
            && p.operation == "POST /payments"
            && p.tag("span.kind").as_deref() == Some("server")
    });
    under_server
        && trace
            .root()
            .is_some_and(|r| trace.service_of(r) == "order-service")
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();

    let source = ctx.repo.join(SOURCE);
    let what = format!("{SOURCE} creates a span named {SPAN}");
    out.push(match std::fs::read_to_string(&source) {
        Ok(text) if text.contains(&format!("\"{SPAN}\"")) => Criterion::pass(what, ""),
        Ok(_) => Criterion::fail(
            what,
            format!(
                "no \"{SPAN}\" in {}: wrap Payment::try_from(request) in \
                 tracing::info_span!(\"{SPAN}\", ...) as step 2 of {} shows",
                source.display(),
                MODULE.page
            ),
        ),
        Err(e) => Criterion::fail(what, format!("cannot read {}: {e}", source.display())),
    });

    let operations = ctx.api.operations(SERVICE).await?;
    let what = format!("{SERVICE} reports {SPAN} spans to the explorer");
    let reported = operations.iter().any(|o| o == SPAN);
    out.push(if reported {
        Criterion::pass(what, "")
    } else {
        Criterion::fail(
            what,
            format!(
                "the explorer has no {SPAN} from {SERVICE}: stop the lab (Ctrl-C), run make run \
                 so it rebuilds with your change, then place an order"
            ),
        )
    });

    let traces = if reported {
        ctx.api
            .traces(&TraceQuery {
                service: SERVICE,
                operation: Some(SPAN),
                limit: 50,
                ..TraceQuery::default()
            })
            .await?
    } else {
        Vec::new()
    };
    let spans: Vec<(&Trace, &Span)> = traces
        .iter()
        .flat_map(|t| {
            t.spans
                .iter()
                .filter(|s| s.operation == SPAN && t.service_of(s) == SERVICE)
                .map(move |s| (t, s))
        })
        .collect();

    let what = format!("a {SPAN} span carries {}", ATTRIBUTES.join(" and "));
    let complete: Vec<&(&Trace, &Span)> = spans
        .iter()
        .filter(|(_, s)| ATTRIBUTES.iter().all(|a| s.tag(a).is_some()))
        .collect();
    out.push(match (complete.first(), spans.first()) {
        (Some((_, span)), _) => Criterion::pass(
            what,
            ATTRIBUTES
                .iter()
                .map(|a| format!("{a}={}", span.tag(a).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (None, Some((_, span))) => Criterion::fail(
            what,
            format!(
                "your latest {SPAN} lacks {}: add them as fields of info_span! (record \
                 payment.valid once validation has answered)",
                ATTRIBUTES
                    .iter()
                    .filter(|a| span.tag(a).is_none())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        ),
        (None, None) => Criterion::fail(what, format!("no {SPAN} span yet (see above)")),
    });

    let what = format!(
        "the {SPAN} span is part of a checkout, a child of {SERVICE}'s POST /payments span"
    );
    out.push(match complete.iter().find(|(t, s)| in_checkout(t, s)) {
        Some((trace, _)) => Criterion::pass(
            what,
            format!("http://127.0.0.1:16686/trace/{}", trace.trace_id),
        ),
        None if complete.is_empty() => {
            Criterion::fail(what, format!("no {SPAN} span with its attributes yet"))
        }
        None => Criterion::fail(
            what,
            "create the span inside the handler, while the request's server span is \
                 current (not in a spawned task or at start-up), and send an order through \
                 order-service",
        ),
    });
    Ok(out)
}
