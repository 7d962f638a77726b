//! Module 02, resource attributes and semantic conventions: which compute each workload runs
//! on, read from the resource ("Process" in the explorer) of its spans. The learner first
//! produces one trace that touches all four workloads, then answers questions whose answers
//! are fixed by the lab's process table (`crate::processes`) and the telemetry conventions,
//! compared as digests.

use super::explorer::ApiError;
use super::tour::checkout_traces;
use super::{Context, Criterion, Module, Question, answer};

pub const MODULE: Module = Module {
    id: "02",
    title: "Resource attributes: where each workload runs",
    page: "docs/workshop/02-resources.md",
    questions: &[
        Question {
            key: "node",
            text: "which Kubernetes node runs order-service's pod?",
        },
        Question {
            key: "instance",
            text: "what is the EC2 instance id of inventory-service?",
        },
        Question {
            key: "launch-type",
            text: "which ECS launch type runs payment-service's task?",
        },
        Question {
            key: "lambda-platform",
            text: "which cloud.platform value says fraud-check is a Lambda function?",
        },
        Question {
            key: "status-attribute",
            text: "which span attribute holds the HTTP status code a server answered, by the \
                   current semantic conventions?",
        },
    ],
};

pub const WORKLOADS: [&str; 4] = [
    "order-service",
    "inventory-service",
    "fraud-check",
    "payment-service",
];

/// (question, digest of the answer, hint when wrong).
const DIGESTS: [(&str, &str, &str); 5] = [
    (
        "node",
        "5d4e0967d062da6bd2bf6bd640e31f467df155ee046f9987cb09ca89a45212e0",
        "look at order-service's Process in the explorer: the k8s.* attributes",
    ),
    (
        "instance",
        "933b236eae30716d267c26cdd5c909e38f19cfee0586f5c513fe1ad0d0bdd1f4",
        "look at inventory-service's Process: EC2 puts the instance id in host.id",
    ),
    (
        "launch-type",
        "d8c336c326163814fd5ce76818282914ded36191fe95fb9c13d184fd176e7c62",
        "look at payment-service's Process: the aws.ecs.* attributes",
    ),
    (
        "lambda-platform",
        "26b71525067b0e579b1b0b220060adb6aac5f7664b00f1ad3b440632019c459f",
        "look at fraud-check's Process: cloud.platform",
    ),
    (
        "status-attribute",
        "ebed3125a620eda3ab2bd88955e25ebbe5a132eed8741d32956c50048323eece",
        "open any server span (span.kind = server) and find the tag with 200 or 201 in it; \
         answer with the attribute's full name",
    ),
];

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let traces = checkout_traces(ctx).await?;
    let what = "you produced a trace that touches all four workloads";
    let complete = traces
        .iter()
        .find(|t| WORKLOADS.iter().all(|w| t.services().contains(w)));
    let mut out = vec![match (complete, traces.first()) {
        (Some(trace), _) => Criterion::pass(
            what,
            format!("http://127.0.0.1:16686/trace/{}", trace.trace_id),
        ),
        (None, Some(latest)) => Criterion::fail(
            what,
            format!(
                "your latest checkout trace has only {}: an order refused before payment does \
                 not reach every workload; send the order of step 1 (a valid card, items in stock)",
                latest.services().join(", ")
            ),
        ),
        (None, None) => Criterion::fail(
            what,
            "no checkout trace yet: place the order of step 1 in docs/workshop/02-resources.md",
        ),
    }];
    for (key, digest, hint) in DIGESTS {
        out.push(ctx.judge(
            &MODULE,
            key,
            |given| answer::matches(MODULE.id, key, given, digest),
            hint,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::PROCESSES;

    /// The value of resource attribute `key` that `lab up` gives `process`.
    fn resource(process: &str, key: &str) -> String {
        let spec = PROCESSES.iter().find(|p| p.name == process).unwrap();
        let (_, attributes) = spec
            .env
            .iter()
            .find(|(k, _)| *k == "OTEL_RESOURCE_ATTRIBUTES")
            .unwrap();
        attributes
            .split(',')
            .find_map(|kv| kv.trim().strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{process} has no {key}"))
            .to_owned()
    }

    fn digest_of(key: &str) -> &'static str {
        DIGESTS.iter().find(|(k, _, _)| *k == key).unwrap().1
    }

    /// The digests follow the process table: change a resource attribute there and this
    /// fails until the digest is updated.
    #[test]
    fn digests_are_the_lab_configs_facts() {
        for (key, process, attribute) in [
            ("node", "order-service", "k8s.node.name"),
            ("instance", "inventory-service", "host.id"),
            ("launch-type", "payment-service", "aws.ecs.launchtype"),
            ("lambda-platform", "fraud-check", "cloud.platform"),
        ] {
            let value = resource(process, attribute);
            assert!(
                answer::matches("02", key, &value, digest_of(key)),
                "{key}: the digest is not that of {process}'s {attribute}={value}"
            );
        }
        assert!(answer::matches(
            "02",
            "status-attribute",
            "http.response.status_code",
            digest_of("status-attribute")
        ));
    }

    #[test]
    fn every_question_has_a_digest() {
        for q in MODULE.questions {
            assert!(DIGESTS.iter().any(|(k, _, _)| *k == q.key), "{}", q.key);
        }
        assert_eq!(DIGESTS.len(), MODULE.questions.len());
    }
}
