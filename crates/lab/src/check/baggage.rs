//! Module 05, baggage: the learner sends an order with a `baggage: session.id=...` header of
//! their own choosing and finds, with the explorer's tag search, that every workload's server
//! span recorded it. The check repeats that search with the session id the learner names
//! (`--answer session=...`) and wants one checkout trace in which all four workloads' server
//! spans carry it; the entry the lab adds on the way (fixed by order-service's code) is a
//! quiz answer compared as a digest.

use super::explorer::{ApiError, Trace, TraceQuery};
use super::resources::WORKLOADS;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "05",
    title: "Baggage: a value every service can see",
    page: "docs/workshop/05-baggage.md",
    questions: &[
        Question {
            key: "session",
            text: "which session.id did you send as baggage?",
        },
        Question {
            key: "added",
            text: "which baggage entry do the services downstream of order-service record \
                   that your request did not send?",
        },
    ],
};

pub const KEY: &str = "session.id";

const ADDED_DIGEST: &str = "cfa3b8525fa3839ed5ac08756f801b81a0fa4ff3de73e2c751866a281478968f";

/// The workloads whose server span in `trace` lacks `session.id=session`.
fn missing(trace: &Trace, session: &str) -> Vec<&'static str> {
    WORKLOADS
        .iter()
        .copied()
        .filter(|w| {
            !trace.spans.iter().any(|s| {
                trace.service_of(s) == *w
                    && s.tag("span.kind").as_deref() == Some("server")
                    && s.tag(KEY).as_deref() == Some(session)
            })
        })
        .collect()
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let session = ctx
        .answers
        .get("session")
        .map(|s| s.trim().trim_matches(|c| matches!(c, '"' | '\'' | '`')))
        .filter(|s| !s.is_empty());

    let what = format!("the explorer's tag search {KEY}=<yours> finds your order in order-service");
    let traces = match session {
        None => {
            out.push(Criterion::fail(
                what,
                format!(
                    "tell the check which {KEY} you sent: lab check 05 --answer session=YOURS \
                     (send it first with the curl of step 1 in {})",
                    MODULE.page
                ),
            ));
            Vec::new()
        }
        Some(session) => {
            let traces = ctx
                .api
                .traces(&TraceQuery {
                    service: "order-service",
                    tags: vec![(KEY, session)],
                    limit: 20,
                    ..TraceQuery::default()
                })
                .await?;
            out.push(if traces.is_empty() {
                Criterion::fail(
                    what,
                    format!(
                        "no order-service trace of the last hour has {KEY}={session}: send the \
                         order of step 1 with the header baggage: {KEY}={session} (check the \
                         spelling: the key is {KEY}, the value is yours)"
                    ),
                )
            } else {
                Criterion::pass(
                    what,
                    format!(
                        "{} trace(s), e.g. http://127.0.0.1:16686/trace/{}",
                        traces.len(),
                        traces[0].trace_id
                    ),
                )
            });
            traces
        }
    };

    let what = format!("one checkout trace where all four workloads' server spans carry {KEY}");
    out.push(match session {
        None => Criterion::fail(what, "answer session= first (see above)"),
        Some(_) if traces.is_empty() => Criterion::fail(what, "no trace with your session yet"),
        Some(session) => match traces.iter().find(|t| missing(t, session).is_empty()) {
            Some(t) => {
                Criterion::pass(what, format!("http://127.0.0.1:16686/trace/{}", t.trace_id))
            }
            None => Criterion::fail(
                what,
                format!(
                    "your latest trace lacks it on the server span of {}: an order refused \
                         early never reaches every workload; send exactly the order of step 1 \
                         (a valid card, an item in stock)",
                    missing(&traces[0], session).join(", ")
                ),
            ),
        },
    });

    out.push(ctx.judge(
        &MODULE,
        "added",
        |given| answer::matches(MODULE.id, "added", given, ADDED_DIGEST),
        "compare the tags of order-service's POST /orders span with those of payment-service's \
         POST /payments span in your trace: one more entry travels downstream; answer with its \
         key",
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_added_entry_is_the_one_order_service_puts_in_baggage() {
        let orders = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../order-service/src/routes/orders.rs"),
        )
        .unwrap();
        assert!(orders.contains("with_baggage([KeyValue::new(\"customer.tier\""));
        assert!(answer::matches(
            "05",
            "added",
            "customer.tier",
            ADDED_DIGEST
        ));
    }
}
