//! Module 16, a trace-based regression test: the learner turns the starter
//! (`docs/workshop/starter/trace_test.py`: place an order, fetch its trace) into a test that
//! asserts on the trace's spans. The check runs it the way CI would, against the lab: it must
//! pass on the healthy lab, and fail when a planted problem brings back a regression a unit
//! test would miss — the payment hop losing its trace context, and the reservation's N+1
//! query. A test that cannot fail does not pass. The check switches the faults itself and puts
//! the learner's settings back afterwards.

use std::path::Path;
use std::time::Duration;

use super::explorer::ApiError;
use super::{Context, Criterion, Module};
use crate::fault::{self, FaultSettings, FaultUpdate, WORKLOADS};

pub const MODULE: Module = Module {
    id: "16",
    title: "A trace-based regression test",
    page: "docs/workshop/16-trace-test.md",
    questions: &[],
};

pub const TEST_FILE: &str = "workshop/trace_test.py";
const STARTER: &str = "docs/workshop/starter/trace_test.py";
/// One run of the learner's test at most.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// The regressions the test must catch: the workload, its planted problem, and what to assert
/// when the test does not notice it.
const REGRESSIONS: [(&str, &str, &str); 2] = [
    (
        "order-service",
        "drop_trace_context",
        "assert that every workload's server span is in the checkout's trace, under the span \
         that called it",
    ),
    (
        "inventory-service",
        "n_plus_one_queries",
        "count inventory-service's SELECT products spans in the trace: one reservation, one \
         SELECT",
    ),
];

/// How one run of the test ended: passed, or not with the end of its output.
async fn run(repo: &Path) -> Result<bool, String> {
    let child = tokio::process::Command::new("python3")
        .arg(TEST_FILE)
        .current_dir(repo)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(RUN_LIMIT, child).await {
        Err(_) => return Err(format!("{TEST_FILE} ran longer than {RUN_LIMIT:?}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("python3 is not installed (sudo apt-get install python3)".to_owned());
        }
        Ok(Err(e)) => return Err(format!("cannot run python3 {TEST_FILE}: {e}")),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(true);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}

/// Sets exactly `scenario` on its workload and nothing anywhere else (`None`: nothing at all).
async fn only(client: &reqwest::Client, scenario: Option<(&str, &str)>) -> Result<(), String> {
    for w in WORKLOADS {
        let mut update = FaultUpdate::clear();
        if let Some((workload, name)) = scenario
            && workload == w.name
        {
            update.scenarios = Some(vec![name.to_owned()]);
        }
        fault::post(client, w, &update)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Puts back the settings the learner had before the check.
async fn restore(client: &reqwest::Client, saved: &[FaultSettings]) -> Result<(), String> {
    for (w, settings) in WORKLOADS.iter().zip(saved) {
        let update = FaultUpdate {
            error_rate: Some(settings.error_rate),
            latency_ms: Some(settings.latency_ms),
            jitter_ms: Some(settings.jitter_ms),
            scenarios: Some(settings.scenarios.iter().cloned().collect()),
            hidden_scenarios: None,
        };
        fault::post(client, w, &update)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let what = format!("{TEST_FILE} exists");
    if !ctx.repo.join(TEST_FILE).is_file() {
        out.push(Criterion::fail(
            what,
            format!("start from the starter: mkdir -p workshop && cp {STARTER} {TEST_FILE}"),
        ));
        return Ok(out);
    }
    out.push(Criterion::pass(what, ""));

    let client = fault::client();
    let mut saved = Vec::new();
    for w in WORKLOADS {
        match fault::get(&client, w).await {
            Ok(s) if s.hidden.as_ref().is_some_and(|h| h.count > 0) => {
                out.push(Criterion::fail(
                    "no incident is running",
                    "an incident's hidden problems would break the healthy run: end it with \
                     lab fault --clear, then check again",
                ));
                return Ok(out);
            }
            Ok(s) => saved.push(s),
            Err(e) => {
                out.push(Criterion::fail("the workloads answer", e.to_string()));
                return Ok(out);
            }
        }
    }

    let mut verdicts = Vec::new();
    let what = "it passes against the healthy lab (every fault off)".to_owned();
    verdicts.push(match only(&client, None).await {
        Err(e) => Criterion::fail(what, e),
        Ok(()) => match run(&ctx.repo).await {
            Ok(_) => Criterion::pass(what, ""),
            Err(output) => Criterion::fail(what, format!("it failed:\n{output}")),
        },
    });
    for (workload, scenario, hint) in REGRESSIONS {
        let what = format!("it fails when {workload} has {scenario}");
        verdicts.push(match only(&client, Some((workload, scenario))).await {
            Err(e) => Criterion::fail(what, e),
            Ok(()) => match run(&ctx.repo).await {
                Ok(_) => Criterion::fail(
                    what,
                    format!("your test passed with the regression in: {hint}"),
                ),
                Err(output) => {
                    Criterion::pass(what, output.lines().last().unwrap_or_default().to_owned())
                }
            },
        });
    }
    if let Err(e) = restore(&client, &saved).await {
        verdicts.push(Criterion::fail("your fault settings are back", e));
    }
    out.extend(verdicts);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_asserts_only_the_order_and_the_regressions_are_planted_problems() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let starter = std::fs::read_to_string(repo.join(STARTER)).unwrap();
        assert!(starter.contains("# TODO: your assertions"));
        for (workload, scenario, _) in REGRESSIONS {
            let w = fault::workload(workload).unwrap();
            assert!(w.scenarios.contains(&scenario), "{workload} {scenario}");
        }
    }
}
