//! Module 12, Lambda cold starts: the fraud-check function runs in an execution environment
//! the emulator starts on demand (a cold start, `faas.coldstart=true` on its span), keeps warm
//! between invocations and recycles when idle or when its configuration changes. The learner
//! causes a cold start of a function that had been warm, finds its trace by tag, and reads the
//! cold starts off the span metrics. The check reads the same explorer and :8889 page; the
//! idle timeout is fixed by the lab's process table and compared as a digest.

use super::explorer::{ApiError, EXPORTER_METRICS, Trace, TraceQuery};
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "12",
    title: "Lambda cold starts",
    page: "docs/workshop/12-cold-starts.md",
    questions: &[
        Question {
            key: "trace",
            text: "the trace id of a checkout whose fraud-check invocation was a cold start of \
                   a function that had been warm before",
        },
        Question {
            key: "coldstarts",
            text: "how many fraud-check invocations were cold starts, by the span metrics on \
                   :8889?",
        },
        Question {
            key: "idle",
            text: "how long may fraud-check sit idle before its execution environment is \
                   recycled, in seconds?",
        },
    ],
};

pub const FUNCTION: &str = "fraud-check";
const IDLE_DIGEST: &str = "07e319083663ab56dd080c3a0fc369b4e2171bc6b3f3c250097b4a6a8efd1885";

/// The span metrics series counting fraud-check's server spans by `faas.coldstart`.
pub const CALLS: &str = "traces_span_metrics_calls_total";

/// One invocation of the function: its server span's start, whether it was a cold start,
/// and its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub trace_id: String,
    pub start_us: u64,
    pub coldstart: bool,
}

pub fn invocations(traces: &[Trace]) -> Vec<Invocation> {
    let mut out: Vec<Invocation> = traces
        .iter()
        .flat_map(|t| {
            t.spans
                .iter()
                .filter(|s| {
                    t.service_of(s) == FUNCTION && s.tag("span.kind").as_deref() == Some("server")
                })
                .filter_map(|s| {
                    Some(Invocation {
                        trace_id: t.trace_id.clone(),
                        start_us: s.start_us,
                        coldstart: s.tag("faas.coldstart")?.parse().ok()?,
                    })
                })
        })
        .collect();
    out.sort_by_key(|i| i.start_us);
    out.dedup();
    out
}

/// The cold starts that came after a warm invocation: an environment was recycled (idle,
/// reconfigured, crashed), not merely started for the first time.
pub fn recycled(invocations: &[Invocation]) -> Vec<&Invocation> {
    let first_warm = invocations.iter().find(|i| !i.coldstart);
    match first_warm {
        None => Vec::new(),
        Some(warm) => invocations
            .iter()
            .filter(|i| i.coldstart && i.start_us > warm.start_us)
            .collect(),
    }
}

/// `60`, `60s`, `60 seconds`, `1m`, `1 minute` are all sixty seconds.
pub fn seconds(given: &str) -> Option<u64> {
    let given = answer::normalise(given);
    let digits: String = given.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = given[digits.len()..].trim();
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => Some(n),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(n * 60),
        _ => None,
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let traces = ctx
        .api
        .traces(&TraceQuery {
            service: FUNCTION,
            limit: 1000,
            ..TraceQuery::default()
        })
        .await?;
    let all = invocations(&traces);
    let recycled = recycled(&all);
    let mut out = Vec::new();

    let what = "fraud-check had a cold start after it had been warm (an environment recycled)";
    out.push(match (recycled.last(), all.iter().any(|i| !i.coldstart)) {
        (Some(latest), _) => Criterion::pass(
            what,
            format!(
                "{} such cold start(s), the latest in http://127.0.0.1:16686/trace/{}",
                recycled.len(),
                latest.trace_id
            ),
        ),
        (None, true) => Criterion::fail(
            what,
            "fraud-check is warm but has not been recycled since: change its configuration \
             (step 3: lab fault fraud-check --latency-ms 20, then lab fault fraud-check \
             --clear) or leave it idle for its idle timeout, then place an order",
        ),
        (None, false) if all.is_empty() => Criterion::fail(
            what,
            "no fraud-check invocation in the explorer yet: place two orders (step 1)",
        ),
        (None, false) => Criterion::fail(
            what,
            "every fraud-check invocation so far was a first start: place a second order to see \
             a warm one (step 1), then cause a cold start (step 3)",
        ),
    });

    out.push(ctx.judge(
        &MODULE,
        "trace",
        |given| {
            let given = answer::normalise(given);
            recycled.iter().any(|i| i.trace_id == given)
        },
        if recycled.is_empty() {
            "cause a cold start of a warm function first (see above), then search the explorer \
             for service fraud-check with the tag faas.coldstart=true"
        } else {
            "search the explorer for service fraud-check with the tag faas.coldstart=true and \
             take the trace of the cold start that followed your configuration change"
        },
    ));

    let metrics = ctx.api.metrics(EXPORTER_METRICS).await?;
    let now: f64 = metrics
        .samples(
            CALLS,
            &[
                ("service_name", FUNCTION),
                ("span_kind", "SPAN_KIND_SERVER"),
                ("faas_coldstart", "true"),
            ],
        )
        .sum();
    out.push(ctx.judge(
        &MODULE,
        "coldstarts",
        |given| {
            // The count only grows: a value read a moment ago, up to two cold starts behind,
            // is still right.
            answer::normalise(given)
                .parse::<f64>()
                .is_ok_and(|n| now > 0.0 && n <= now && n >= now - 2.0)
        },
        &format!(
            "on {EXPORTER_METRICS}, add up {CALLS} for service_name=\"{FUNCTION}\", \
             span_kind=\"SPAN_KIND_SERVER\", faas_coldstart=\"true\" (it is {now} now; the span \
             metrics are flushed every 5 s)"
        ),
    ));

    out.push(ctx.judge(
        &MODULE,
        "idle",
        |given| {
            seconds(given)
                .is_some_and(|s| answer::matches(MODULE.id, "idle", &s.to_string(), IDLE_DIGEST))
        },
        "lab up prints how it starts the emulator, and the emulator logs its idle timeout when \
         it starts and each time it stops an idle environment (lines starting with \
         [fraud-check] in the lab's terminal); answer in seconds",
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::PROCESSES;

    fn inv(trace: &str, start_us: u64, coldstart: bool) -> Invocation {
        Invocation {
            trace_id: trace.into(),
            start_us,
            coldstart,
        }
    }

    #[test]
    fn only_a_cold_start_after_a_warm_invocation_counts() {
        let first = [inv("a", 1, true), inv("b", 2, false)];
        assert!(
            recycled(&first).is_empty(),
            "a first start is not a recycle"
        );
        let again = [inv("a", 1, true), inv("b", 2, false), inv("c", 3, true)];
        assert_eq!(recycled(&again), [&again[2]]);
        assert!(recycled(&[inv("a", 1, true), inv("b", 5, true)]).is_empty());
    }

    #[test]
    fn durations_are_read_in_seconds() {
        for given in ["60", "60s", " 60 seconds", "1m", "1 minute"] {
            assert_eq!(seconds(given), Some(60), "{given}");
        }
        assert_eq!(seconds("sixty"), None);
        assert_eq!(seconds("60h"), None);
    }

    /// The digest follows the process table: change fraud-check's --idle-timeout there and
    /// this fails until the digest is updated.
    #[test]
    fn the_idle_digest_is_the_emulators_idle_timeout() {
        let spec = PROCESSES.iter().find(|p| p.name == FUNCTION).unwrap();
        let at = spec
            .args
            .iter()
            .position(|a| *a == "--idle-timeout")
            .unwrap();
        let timeout = seconds(spec.args[at + 1]).unwrap();
        assert!(answer::matches(
            "12",
            "idle",
            &timeout.to_string(),
            IDLE_DIGEST
        ));
    }
}
