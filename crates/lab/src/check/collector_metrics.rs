//! Module 11, the collector's own metrics: where data is refused or dropped. The learner sends
//! the node agent (:4318) one span too large for the gateway's gRPC receiver: the agent
//! accepts it (HTTP 200), its exporter is refused by the gateway, and the span is lost. Only
//! the agent's own metrics on :8887 tell; the gateway never decoded the request. The check
//! reads :8887 for the loss, and compares the names the learner gives (fixed by the collector's
//! code and config) as digests.

use super::explorer::{AGENT_METRICS, ApiError};
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "11",
    title: "The collector's own metrics: where data is dropped",
    page: "docs/workshop/11-collector-metrics.md",
    questions: &[
        Question {
            key: "metric",
            text: "which metric counted the span you lost?",
        },
        Question {
            key: "tier",
            text: "which collector lost it: agent, gateway or sidecar?",
        },
        Question {
            key: "limit",
            text: "how large a message, in MiB, does the gateway's OTLP gRPC receiver accept?",
        },
    ],
};

pub const SEND_FAILED: &str = "otelcol_exporter_send_failed_spans_total";
pub const ACCEPTED: &str = "otelcol_receiver_accepted_spans_total";

/// (question, digest of the normalised answer, hint when wrong).
const DIGESTS: [(&str, &str, &str); 3] = [
    (
        "metric",
        "1ed6b1553c0265780ee8a1e59a1f59c3160dbe97f4ef8ffb2166787fde4f0a5e",
        "look for an otelcol_exporter_* counter on http://127.0.0.1:8887/metrics that is not \
         zero; answer with the metric's name",
    ),
    (
        "tier",
        "211d4f6cc88899ab543128c305cca98308b4b61fad80091150899c04e6cf510c",
        "which of :8887 (agent), :8888 (gateway), :8886 (sidecar) shows the failure?",
    ),
    (
        "limit",
        "e878826389e350b7214a622cf51bc0d341856300184317b9e223a90ac14f5bf6",
        "the agent's log line in the lab's terminal quotes the gateway's refusal with its \
         limit in bytes; the collector's setting is receivers.otlp.protocols.grpc.\
         max_recv_msg_size_mib (answer in MiB, a number)",
    ),
];

/// The learner's answer, as the digest was made: `otelcol_x_total` and `otelcol_x` are the
/// same metric (the OpenMetrics suffix); `collector-agent` and `the agent` are the agent;
/// `4`, `4mib`, `4 MiB` are four.
pub fn canonical(key: &str, given: &str) -> String {
    let given = answer::normalise(given);
    match key {
        "metric" => given
            .strip_suffix("_total")
            .unwrap_or(&given)
            .trim_start_matches("otelcol_")
            .to_owned(),
        "tier" => given
            .trim_start_matches("the ")
            .trim_start_matches("collector-")
            .trim_end_matches(" collector")
            .to_owned(),
        "limit" => given
            .trim_end_matches("mib")
            .trim_end_matches("mb")
            .trim()
            .to_owned(),
        _ => given,
    }
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let agent = ctx.api.metrics(AGENT_METRICS).await?;
    let mut out = Vec::new();

    let accepted: f64 = agent
        .samples(ACCEPTED, &[("receiver", "otlp"), ("transport", "http")])
        .sum();
    let what = "the agent accepted spans over OTLP/HTTP (:4318)";
    out.push(if accepted > 0.0 {
        Criterion::pass(
            what,
            format!("{ACCEPTED}{{transport=\"http\"}} = {accepted}"),
        )
    } else {
        Criterion::fail(
            what,
            format!(
                "{ACCEPTED}{{transport=\"http\"}} is 0 on {AGENT_METRICS}: send the span of \
                 step 2 in {} to http://127.0.0.1:4318/v1/traces",
                MODULE.page
            ),
        )
    });

    let failed: f64 = agent.samples(SEND_FAILED, &[]).sum();
    let what = "a span was lost between the agent and the gateway, and :8887 counted it";
    out.push(if failed > 0.0 {
        Criterion::pass(what, format!("{SEND_FAILED} = {failed} on {AGENT_METRICS}"))
    } else {
        Criterion::fail(
            what,
            format!(
                "nothing lost yet: the agent's exporter has failed no span. Send the oversized \
                 span of step 2 (a few MB: larger than the gateway accepts, smaller than the \
                 agent accepts), then look at {AGENT_METRICS} again"
            ),
        )
    });

    for (key, digest, hint) in DIGESTS {
        out.push(ctx.judge(
            &MODULE,
            key,
            |given| answer::matches(MODULE.id, key, &canonical(key, given), digest),
            hint,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(key: &str) -> &'static str {
        DIGESTS.iter().find(|(k, _, _)| *k == key).unwrap().1
    }

    #[test]
    fn answers_are_read_in_their_usual_spellings() {
        for given in [
            "otelcol_exporter_send_failed_spans_total",
            "otelcol_exporter_send_failed_spans",
            " `OTELCOL_EXPORTER_SEND_FAILED_SPANS_TOTAL` ",
        ] {
            assert!(
                answer::matches(
                    "11",
                    "metric",
                    &canonical("metric", given),
                    digest_of("metric")
                ),
                "{given}"
            );
        }
        for given in ["agent", "collector-agent", "the agent", "Agent collector"] {
            assert!(
                answer::matches("11", "tier", &canonical("tier", given), digest_of("tier")),
                "{given}"
            );
        }
        for given in ["4", "4 MiB", "4mib"] {
            assert!(
                answer::matches(
                    "11",
                    "limit",
                    &canonical("limit", given),
                    digest_of("limit")
                ),
                "{given}"
            );
        }
        assert!(!answer::matches(
            "11",
            "metric",
            &canonical("metric", "otelcol_receiver_refused_spans_total"),
            digest_of("metric")
        ));
    }

    /// The digests follow the collector: its exporters' failure counter, and the gRPC
    /// receiver's default limit that the gateway's config leaves unchanged.
    #[test]
    fn digests_are_the_collectors_facts() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let telemetry =
            std::fs::read_to_string(repo.join("crates/collector/src/telemetry.rs")).unwrap();
        assert!(telemetry.contains(&format!("\"{SEND_FAILED}\"")));
        let receiver =
            std::fs::read_to_string(repo.join("crates/collector/src/receivers/otlp/mod.rs"))
                .unwrap();
        assert!(receiver.contains("max_recv_msg_size_mib: 4,"));
        let gateway =
            std::fs::read_to_string(repo.join("crates/collector/configs/local/gateway.yaml"))
                .unwrap();
        assert!(!gateway.contains("max_recv_msg_size_mib"));
        let agent = std::fs::read_to_string(repo.join("crates/collector/configs/local/agent.yaml"))
            .unwrap();
        assert!(agent.contains("endpoint: 127.0.0.1:4318"));
    }
}
