//! `lab fault`: shows and changes the fault settings of the running workloads through each
//! one's own `GET|POST /admin/faults`, so a workshop never needs curl to break something.
//!
//! The JSON is the workloads' (see `telemetry::faults`): `error_rate` (0..=1), `latency_ms`,
//! `jitter_ms` and `scenarios` (a list of names). A `POST` changes only the fields it carries.
//! The workloads are the authority on which scenario names exist: a name this table does not
//! know is still sent, and the workload's refusal (which lists the names it knows) is shown.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A workload that serves `/admin/faults`, with the named scenarios it acts on.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    /// Its base URL in the local lab (the ports of [`crate::processes::PROCESSES`]).
    pub url: &'static str,
    pub scenarios: &'static [&'static str],
    /// The workshop's planted problems among `scenarios`: what `make workshop` (`lab up
    /// --workshop`) turns on at start, through the workload's `FAULT_SCENARIOS`.
    pub planted: &'static [&'static str],
}

/// Every workload of the lab, in the order a request meets them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "order-service",
        url: "http://127.0.0.1:8080",
        scenarios: &[
            "db_single_connection",
            "drop_trace_context",
            "customer_id_metric_label",
            "sequential_downstream_calls",
            "drop_message_context",
        ],
        // Not drop_trace_context: with it on from the start, the checkout trace of module
        // 01's tour (and 05's baggage) has no payment-service span. Its module switches it
        // on with `lab fault order-service drop_trace_context`. Nor drop_message_context, which
        // module 18 switches on the same way.
        planted: &[
            "db_single_connection",
            "customer_id_metric_label",
            "sequential_downstream_calls",
        ],
    },
    Workload {
        name: "inventory-service",
        url: "http://127.0.0.1:8082",
        scenarios: &[
            "slow_inventory_queries",
            "inventory_lock",
            "n_plus_one_queries",
            "span_per_item",
        ],
        planted: &["n_plus_one_queries", "span_per_item"],
    },
    Workload {
        name: "fraud-check",
        url: "http://127.0.0.1:9000",
        scenarios: &["fraud_reject_all"],
        planted: &[],
    },
    Workload {
        name: "payment-service",
        url: "http://127.0.0.1:8081",
        scenarios: &["payment_gateway_timeout", "payment_decline_all"],
        planted: &[],
    },
];

/// `FAULT_SCENARIOS` for the process `name` in workshop mode: its planted problems, or
/// `None` when it has none.
pub fn planted_scenarios(name: &str) -> Option<String> {
    WORKLOADS
        .iter()
        .find(|w| w.name == name && !w.planted.is_empty())
        .map(|w| w.planted.join(","))
}

/// What `lab` says when nothing answers: the one fix a learner needs.
pub const LAB_NOT_RUNNING: &str = "is the lab running? start it with make run";

/// The settings as `GET /admin/faults` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    pub error_rate: f64,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub scenarios: BTreeSet<String>,
    /// The scenarios of an incident (`lab incident`): on, but not named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Hidden>,
}

/// What a workload says about its hidden scenarios: how many, and the SHA-256 of the salt, a
/// colon and their names sorted and joined with commas (see [`hidden_digest`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hidden {
    pub count: usize,
    pub salt: String,
    pub digest: String,
}

/// The digest a workload gives for the hidden scenarios `names`, with its `salt`.
pub fn hidden_digest(salt: &str, names: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    hex::encode(Sha256::digest(format!("{salt}:{}", sorted.join(","))))
}

/// A partial update, as `POST /admin/faults` takes it: fields left `None` are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden_scenarios: Option<Vec<String>>,
}

impl FaultUpdate {
    /// Everything off.
    pub fn clear() -> Self {
        Self {
            error_rate: Some(0.0),
            latency_ms: Some(0),
            jitter_ms: Some(0),
            scenarios: Some(Vec::new()),
            hidden_scenarios: Some(Vec::new()),
        }
    }
}

/// Why a workload's faults could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("unknown workload {name:?}; the workloads are: {}", workload_names())]
    UnknownWorkload { name: String },
    #[error(
        "{scenario} is a scenario of {owner}, not of {workload}: run `lab fault {owner} {scenario}`"
    )]
    WrongWorkload {
        scenario: String,
        workload: &'static str,
        owner: &'static str,
    },
    #[error("{workload} is not running (nothing listens on {url})")]
    NotRunning {
        workload: &'static str,
        url: &'static str,
    },
    #[error(
        "{workload} answered {url}/admin/faults with HTTP {status}, not its fault settings: \
         this build of {workload} does not serve /admin/faults yet (rebuild with make run){detail}"
    )]
    NotSupported {
        workload: &'static str,
        url: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{workload} refused the change: {message}")]
    Refused {
        workload: &'static str,
        message: String,
    },
    #[error("{workload}: {source}")]
    Http {
        workload: &'static str,
        source: reqwest::Error,
    },
}

pub fn workload_names() -> String {
    WORKLOADS
        .iter()
        .map(|w| w.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The workload called `name`, or an error listing the real names.
pub fn workload(name: &str) -> Result<&'static Workload, FaultError> {
    WORKLOADS
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| FaultError::UnknownWorkload {
            name: name.to_owned(),
        })
}

/// Refuses a scenario this table gives to another workload: it would be accepted there and
/// do nothing, which is the silent failure a workshop must not have.
pub fn check_owner(workload: &'static Workload, scenario: &str) -> Result<(), FaultError> {
    match WORKLOADS
        .iter()
        .find(|w| w.name != workload.name && w.scenarios.contains(&scenario))
    {
        Some(owner) if !workload.scenarios.contains(&scenario) => Err(FaultError::WrongWorkload {
            scenario: scenario.to_owned(),
            workload: workload.name,
            owner: owner.name,
        }),
        _ => Ok(()),
    }
}

/// A small HTTP client for the admin endpoints.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        // Building fails only without a TLS backend or with a broken resolver config, neither
        // of which plain-HTTP loopback needs; a panic here names the cause.
        .expect("an HTTP client for 127.0.0.1")
}

fn transport(workload: &'static Workload, error: reqwest::Error) -> FaultError {
    if error.is_connect() {
        FaultError::NotRunning {
            workload: workload.name,
            url: workload.url,
        }
    } else {
        FaultError::Http {
            workload: workload.name,
            source: error,
        }
    }
}

/// Reads an answer of `/admin/faults`: the settings on 2xx, the workload's own message on
/// 400, and [`FaultError::NotSupported`] for anything that is not the settings (e.g. a
/// Lambda emulator that still turns every path into an invocation).
async fn settings_from(
    workload: &'static Workload,
    response: reqwest::Response,
) -> Result<FaultSettings, FaultError> {
    let status = response.status();
    let body = response.text().await.map_err(|e| transport(workload, e))?;
    if status == reqwest::StatusCode::BAD_REQUEST
        && let Ok(refusal) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(message) = refusal["error"].as_str()
    {
        return Err(FaultError::Refused {
            workload: workload.name,
            message: message.to_owned(),
        });
    }
    match serde_json::from_str::<FaultSettings>(&body) {
        Ok(settings) if status.is_success() => Ok(settings),
        _ => {
            let excerpt: String = body.trim().chars().take(200).collect();
            Err(FaultError::NotSupported {
                workload: workload.name,
                url: workload.url,
                status: status.as_u16(),
                detail: if excerpt.is_empty() {
                    String::new()
                } else {
                    format!("; it said: {excerpt}")
                },
            })
        }
    }
}

pub async fn get(
    client: &reqwest::Client,
    workload: &'static Workload,
) -> Result<FaultSettings, FaultError> {
    let response = client
        .get(format!("{}/admin/faults", workload.url))
        .send()
        .await
        .map_err(|e| transport(workload, e))?;
    settings_from(workload, response).await
}

pub async fn post(
    client: &reqwest::Client,
    workload: &'static Workload,
    update: &FaultUpdate,
) -> Result<FaultSettings, FaultError> {
    let response = client
        .post(format!("{}/admin/faults", workload.url))
        .json(update)
        .send()
        .await
        .map_err(|e| transport(workload, e))?;
    settings_from(workload, response).await
}

/// One line of the `lab fault` table.
pub fn describe(settings: &FaultSettings) -> String {
    let mut parts = Vec::new();
    if settings.error_rate > 0.0 {
        parts.push(format!("error rate {}", settings.error_rate));
    }
    if settings.latency_ms > 0 || settings.jitter_ms > 0 {
        let mut latency = format!("+{} ms", settings.latency_ms);
        if settings.jitter_ms > 0 {
            latency.push_str(&format!(" (+0..{} ms jitter)", settings.jitter_ms));
        }
        parts.push(latency);
    }
    if !settings.scenarios.is_empty() {
        parts.push(
            settings
                .scenarios
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(hidden) = settings.hidden.as_ref().filter(|h| h.count > 0) {
        parts.push(format!(
            "an incident: {} hidden problem{}",
            hidden.count,
            if hidden.count == 1 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        "no faults".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The scenarios of every workload, for help texts and listings.
pub fn scenarios_help() -> String {
    let mut text = String::from("Named scenarios, by workload:\n");
    for w in WORKLOADS {
        let names = if w.scenarios.is_empty() {
            "(none)".to_owned()
        } else {
            w.scenarios.join(", ")
        };
        text.push_str(&format!("  {:<18} {names}\n", w.name));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_is_a_process_of_the_lab_on_its_port() {
        for w in WORKLOADS {
            let process = crate::processes::PROCESSES
                .iter()
                .find(|p| p.name == w.name)
                .unwrap_or_else(|| panic!("{} is not a process of lab up", w.name));
            let port: u16 = w.url.rsplit(':').next().unwrap().parse().unwrap();
            assert!(
                process.ports.iter().any(|p| p.number == port),
                "{}: {} is not one of its ports",
                w.name,
                w.url
            );
        }
    }

    #[test]
    fn a_scenario_of_another_workload_is_refused_naming_its_owner() {
        let order = workload("order-service").unwrap();
        let err = check_owner(order, "payment_gateway_timeout").unwrap_err();
        assert_eq!(
            err.to_string(),
            "payment_gateway_timeout is a scenario of payment-service, not of order-service: \
             run `lab fault payment-service payment_gateway_timeout`"
        );
        let payment = workload("payment-service").unwrap();
        assert!(check_owner(payment, "payment_gateway_timeout").is_ok());
        // Names the table does not know go to the workload, which decides.
        assert!(check_owner(payment, "a_new_planted_problem").is_ok());
    }

    #[test]
    fn unknown_workload_lists_the_real_ones() {
        let message = workload("payments").unwrap_err().to_string();
        assert!(message.contains("\"payments\""), "{message}");
        for w in WORKLOADS {
            assert!(message.contains(w.name), "{message}");
        }
    }

    #[test]
    fn update_sends_only_the_fields_given() {
        let update = FaultUpdate {
            latency_ms: Some(300),
            ..FaultUpdate::default()
        };
        assert_eq!(
            serde_json::to_string(&update).unwrap(),
            r#"{"latency_ms":300}"#
        );
        assert_eq!(
            serde_json::to_string(&FaultUpdate::clear()).unwrap(),
            r#"{"error_rate":0.0,"latency_ms":0,"jitter_ms":0,"scenarios":[],"hidden_scenarios":[]}"#
        );
    }

    fn answer(status: u16, body: &str) -> reqwest::Response {
        http::Response::builder()
            .status(status)
            .body(body.to_owned())
            .unwrap()
            .into()
    }

    /// A workload that does not serve /admin/faults yet (the Lambda emulator used to turn
    /// every path into an invocation) is named as such, not reported as a JSON error.
    #[tokio::test]
    async fn an_answer_that_is_not_the_settings_says_the_endpoint_is_missing() {
        let fraud = workload("fraud-check").unwrap();
        let err = settings_from(fraud, answer(200, r#"{"approved":true}"#))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "fraud-check answered http://127.0.0.1:9000/admin/faults with HTTP 200"
            ) && err.contains("does not serve /admin/faults yet"),
            "{err}"
        );
        let refused = settings_from(fraud, answer(400, r#"{"error":"unknown scenario"}"#))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "fraud-check refused the change: unknown scenario"
        );
        let settings = settings_from(
            fraud,
            answer(
                200,
                r#"{"error_rate":0.5,"latency_ms":0,"jitter_ms":0,"scenarios":[]}"#,
            ),
        )
        .await
        .unwrap();
        assert_eq!(settings.error_rate, 0.5);
    }

    /// The table against the workloads' code: every scenario is one the workloads accept
    /// (`KNOWN_SCENARIOS`), every planted problem is in its workload's list, and the
    /// services' own scenarios are asked for by name in that service's source, so a
    /// workload never accepts a scenario from this table and does nothing with it.
    #[test]
    fn every_scenario_of_the_table_is_known_and_acted_on_by_its_workload() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let known = std::fs::read_to_string(crates.join("telemetry/src/faults.rs")).unwrap();
        let source_of = |dir: &str| {
            let mut text = String::new();
            let mut pending = vec![crates.join(dir).join("src")];
            while let Some(path) = pending.pop() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        pending.push(path);
                    } else if path.extension().is_some_and(|e| e == "rs") {
                        text.push_str(&std::fs::read_to_string(path).unwrap());
                    }
                }
            }
            text
        };
        for workload in WORKLOADS {
            for planted in workload.planted {
                assert!(workload.scenarios.contains(planted), "{planted}");
            }
            let source = match workload.name {
                "order-service" | "inventory-service" | "payment-service" => {
                    source_of(workload.name)
                }
                _ => continue,
            };
            for scenario in workload.scenarios {
                let quoted = format!("\"{scenario}\"");
                assert!(
                    known.contains(&quoted),
                    "{scenario} is not in KNOWN_SCENARIOS"
                );
                assert!(
                    source.contains(&quoted),
                    "{} never asks for {scenario}",
                    workload.name
                );
            }
        }
    }

    #[test]
    fn describe_says_no_faults_or_each_setting() {
        assert_eq!(describe(&FaultSettings::default()), "no faults");
        let settings = FaultSettings {
            error_rate: 0.2,
            latency_ms: 300,
            jitter_ms: 50,
            scenarios: ["inventory_lock".to_owned()].into(),
            hidden: None,
        };
        assert_eq!(
            describe(&settings),
            "error rate 0.2 · +300 ms (+0..50 ms jitter) · inventory_lock"
        );
        let incident: FaultSettings = serde_json::from_str(
            r#"{"error_rate":0,"latency_ms":0,"jitter_ms":0,"scenarios":[],
                "hidden":{"count":2,"salt":"s","digest":"d"}}"#,
        )
        .unwrap();
        assert_eq!(describe(&incident), "an incident: 2 hidden problems");
    }

    #[test]
    fn the_hidden_digest_ignores_order_and_repeats() {
        assert_eq!(
            hidden_digest("s", &["b", "a", "a"]),
            hidden_digest("s", &["a", "b"])
        );
        assert_ne!(hidden_digest("s", &["a"]), hidden_digest("t", &["a"]));
    }
}
