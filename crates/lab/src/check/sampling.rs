//! Module 15, head vs tail sampling: the learner sends the second backend (module 13) only a
//! sample of the traces, decided at the gateway once each trace is complete (`tail_sampling`):
//! every trace with an error kept, a small share of the rest. The lab's own explorer keeps
//! everything, so the two can be compared trace by trace. The check reads the learner's file
//! (a traces pipeline with `tail_sampling` into the second backend, a policy that keeps
//! errors) and compares the two explorers over the checkouts the second backend has seen:
//! every error checkout kept, at most half of the others.

use std::collections::HashSet;

use super::backend_swap::{vendor_checkouts, vendor_exporters};
use super::explorer::{ApiError, Trace};
use super::pipelines::{CONFIG, GatewayConfig, kind, parse, validate};
use super::tour::{checkout_span, recent_checkouts};
use super::{Context, Criterion, Module};

pub const MODULE: Module = Module {
    id: "15",
    title: "Head vs tail sampling: every error kept while volume drops",
    page: "docs/workshop/15-sampling.md",
    questions: &[],
};

/// Checkouts and error checkouts the comparison needs.
const CHECKOUTS: usize = 40;
const ERRORS: usize = 3;
/// Checkouts younger than this may still wait for their sampling decision.
const SETTLE_US: u64 = 20_000_000;

/// Whether `config` keeps errors: a `tail_sampling` processor, in a traces pipeline that
/// exports to the second backend, with a `status_code` policy that lists ERROR.
fn sampled_pipeline(config: &GatewayConfig) -> Result<String, String> {
    let vendor = vendor_exporters(config);
    let pipeline = config.traces_pipelines().into_iter().find(|(_, p)| {
        p.exporters.iter().any(|e| vendor.contains(e))
            && p.processors.iter().any(|id| kind(id) == "tail_sampling")
    });
    let Some((id, pipeline)) = pipeline else {
        return Err(
            "no traces pipeline both runs a tail_sampling processor and exports to the second \
             backend: give the second backend a pipeline of its own (traces/vendor) with \
             tail_sampling in its processors"
                .to_owned(),
        );
    };
    let exports_everything_too = config.traces_pipelines().iter().any(|(other, p)| {
        *other != id
            && p.exporters.iter().any(|e| vendor.contains(e))
            && !p.processors.iter().any(|id| kind(id) == "tail_sampling")
    });
    if exports_everything_too {
        return Err(format!(
            "another traces pipeline still sends the second backend every trace: take {} out \
             of it",
            vendor.join(", ")
        ));
    }
    let sampler = pipeline
        .processors
        .iter()
        .find(|id| kind(id) == "tail_sampling")
        .cloned()
        .unwrap_or_default();
    let body = config
        .processors
        .get(&sampler)
        .cloned()
        .flatten()
        .unwrap_or_default();
    let keeps_errors = body["policies"].as_array().into_iter().flatten().any(|p| {
        p["type"] == "status_code"
            && p["status_code"]["status_codes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c == "ERROR")
    });
    if keeps_errors {
        Ok(format!("{id}: {sampler} into {}", vendor.join(", ")))
    } else {
        Err(format!(
            "{sampler} has no status_code policy with ERROR among its status_codes: add one, so \
             every trace with an error is kept"
        ))
    }
}

fn failed(trace: &Trace) -> bool {
    checkout_span(trace).is_some_and(|s| s.tag("error").as_deref() == Some("true"))
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let what = format!("{CONFIG} validates");
    let Ok(text) = std::fs::read_to_string(ctx.repo.join(CONFIG)) else {
        out.push(Criterion::fail(
            what,
            format!("no {CONFIG}: module 13 makes it"),
        ));
        return Ok(out);
    };
    out.push(match validate(&ctx.repo) {
        Ok(summary) => Criterion::pass(what, summary),
        Err(problems) => Criterion::fail(what, problems),
    });
    let what = "the second backend gets tail-sampled traces, errors always kept";
    out.push(match parse(&text).and_then(|c| sampled_pipeline(&c)) {
        Ok(detail) => Criterion::pass(what, detail),
        Err(hint) => Criterion::fail(what, hint),
    });

    let what = format!(
        "every error checkout reached the second backend, at most half of the others \
         ({CHECKOUTS}+ checkouts, {ERRORS}+ errors)"
    );
    let vendor = match vendor_checkouts(ctx, 1000).await {
        Ok(traces) => traces,
        Err(e) => {
            out.push(Criterion::fail(
                what,
                format!("the second backend does not answer ({e}): it runs with make workshop"),
            ));
            return Ok(out);
        }
    };
    let start = |t: &Trace| checkout_span(t).map_or(0, |s| s.start_us);
    let Some(since) = vendor.iter().map(start).filter(|s| *s > 0).min() else {
        out.push(Criterion::fail(
            what,
            format!(
                "the second backend has no checkout yet: restart the lab with your file (make \
                 workshop GATEWAY={CONFIG}) and send step 3's traffic"
            ),
        ));
        return Ok(out);
    };
    let kept: HashSet<&str> = vendor.iter().map(|t| t.trace_id.as_str()).collect();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let all: Vec<Trace> = recent_checkouts(ctx, 1000)
        .await?
        .into_iter()
        .filter(|t| start(t) >= since && start(t) + SETTLE_US < now_us)
        .collect();
    let (errors, others): (Vec<&Trace>, Vec<&Trace>) = all.iter().partition(|t| failed(t));
    let kept_errors = errors
        .iter()
        .filter(|t| kept.contains(t.trace_id.as_str()))
        .count();
    let kept_others = others
        .iter()
        .filter(|t| kept.contains(t.trace_id.as_str()))
        .count();
    let detail = format!(
        "kept {kept_errors} of {} error checkouts and {kept_others} of {} others",
        errors.len(),
        others.len()
    );
    out.push(if all.len() < CHECKOUTS || errors.len() < ERRORS {
        Criterion::fail(
            what,
            format!(
                "{detail} so far (checkouts settle {} s after they end): send step 3's traffic, \
                 with its failures",
                SETTLE_US / 1_000_000
            ),
        )
    } else if kept_errors < errors.len() {
        Criterion::fail(
            what,
            format!(
                "{detail}: an error trace was dropped — is the status_code policy first-class, not \
                 behind a probabilistic one? Is decision_wait longer than a trace's spans take to \
                 arrive (the SDKs export every 5 s: 10s is safe)?"
            ),
        )
    } else if kept_others * 2 > others.len() {
        Criterion::fail(
            what,
            format!("{detail}: the volume hardly dropped — lower the probabilistic policy's sampling_percentage"),
        )
    } else {
        Criterion::pass(what, detail)
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "exporters:\n  otlp_http/vendor: {endpoint: http://127.0.0.1:4518}\n\
        processors:\n  tail_sampling:\n    policies:\n      - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n\
        service:\n  pipelines:\n";

    #[test]
    fn the_second_backend_needs_its_own_sampled_pipeline_that_keeps_errors() {
        let good = format!(
            "{BASE}    traces:\n      exporters: [jaeger_storage_exporter]\n    traces/vendor:\n      \
             processors: [tail_sampling]\n      exporters: [otlp_http/vendor]\n"
        );
        assert!(sampled_pipeline(&parse(&good).unwrap()).is_ok());
        let leaky = format!(
            "{BASE}    traces:\n      exporters: [otlp_http/vendor]\n    traces/vendor:\n      \
             processors: [tail_sampling]\n      exporters: [otlp_http/vendor]\n"
        );
        assert!(
            sampled_pipeline(&parse(&leaky).unwrap())
                .unwrap_err()
                .contains("every trace")
        );
        let unsampled = format!("{BASE}    traces:\n      exporters: [otlp_http/vendor]\n");
        assert!(sampled_pipeline(&parse(&unsampled).unwrap()).is_err());
        let no_errors = good.replace("[ERROR]", "[OK]");
        assert!(
            sampled_pipeline(&parse(&no_errors).unwrap())
                .unwrap_err()
                .contains("ERROR")
        );
    }
}
