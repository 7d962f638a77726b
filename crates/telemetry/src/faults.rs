//! Fault injection shared by every workload, so a workshop can break things on purpose and
//! watch the telemetry change.
//!
//! [`Faults`] holds the current settings (read at start from `FAULT_ERROR_RATE` 0..=1,
//! `FAULT_LATENCY_MS`, `FAULT_JITTER_MS`, `FAULT_SCENARIOS` a comma list). [`Faults::router`]
//! serves `GET /admin/faults` (the settings as JSON) and `POST /admin/faults` (a JSON object
//! with any of `error_rate`, `latency_ms`, `jitter_ms`, `scenarios`; fields left out keep their
//! value; invalid input answers 400 with `{"error": ".."}`). [`Faults::layer`] applies the
//! added latency and the error rate (503 with a JSON body) to every route except
//! `/admin/*` and `/healthz`. Services ask [`Faults::scenario`] for the named scenarios.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// Named scenarios a workload may act on. Unknown names are refused so a typo in a workshop
/// does not silently do nothing.
pub const KNOWN_SCENARIOS: [&str; 12] = [
    // payment-service: every gateway call times out (504).
    "payment_gateway_timeout",
    // inventory-service: every database statement takes extra time.
    "slow_inventory_queries",
    // inventory-service: requests are serialised through one lock (queueing shows up).
    "inventory_lock",
    // fraud-check Lambda: every order is rejected.
    "fraud_reject_all",
    // payment-service: every card is declined (402).
    "payment_decline_all",
    // The workshop's planted problems (`make workshop` turns them all on). Each one marks the
    // span where it acts with a `fault.injected` event naming it, so an answer can be checked.
    //
    // order-service: a checkout holds the orders database's one connection from its first
    // statement to its last, across the downstream calls: checkouts queue behind each other.
    "db_single_connection",
    // inventory-service: a reservation reads each product with its own SELECT (N+1).
    "n_plus_one_queries",
    // order-service: the payment call is sent without `traceparent`, so payment-service
    // starts a new trace.
    "drop_trace_context",
    // order-service: `orders.created` carries `customer.id`, one series per customer.
    "customer_id_metric_label",
    // inventory-service: a span for every item priced in a reservation.
    "span_per_item",
    // order-service: the fraud check and the payment run one after the other, though
    // neither needs the other's answer: the checkout takes their sum, not the longer one.
    "sequential_downstream_calls",
    // order-service: the outbox relay sends order events without their trace context, so
    // the fulfilment that handles them cannot link back to the order.
    "drop_message_context",
];

/// A latency drawn from a log-normal distribution with the given median and spread (sigma of
/// the underlying normal), clamped to `min_ms..=max_ms`: the skewed shape, with its long right
/// tail, that real dependencies show on a latency histogram. For the lab's simulated ones
/// (the card gateway, the fraud model).
pub fn skewed_latency(median_ms: f64, sigma: f64, min_ms: f64, max_ms: f64) -> Duration {
    let mut rng = rand::rng();
    // Box-Muller: one standard normal sample from two uniforms.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let millis = (median_ms.ln() + sigma * normal)
        .exp()
        .clamp(min_ms, max_ms);
    Duration::from_micros((millis * 1000.0) as u64)
}

/// Name of the span event (and attribute key) that says a planted problem or fault acted
/// on a span; its `fault.name` attribute names the scenario.
pub const FAULT_INJECTED: &str = "fault.injected";

fn add_injected_event(scenario: &'static str) {
    use opentelemetry::trace::TraceContextExt as _;
    // The current context's span, whether `tracing` or the OpenTelemetry API made it.
    opentelemetry::Context::current().span().add_event(
        FAULT_INJECTED,
        vec![opentelemetry::KeyValue::new("fault.name", scenario)],
    );
}

/// The fault settings, as `GET /admin/faults` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Share of requests answered 503 at once, 0.0..=1.0.
    pub error_rate: f64,
    /// Latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Up to this many extra milliseconds, uniformly random, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Active named scenarios, from [`KNOWN_SCENARIOS`].
    pub scenarios: BTreeSet<String>,
    /// An incident's scenarios (`lab incident`), shown only as a count and a digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Hidden>,
    /// Their names: acted on like `scenarios`, never shown, never marked on spans.
    #[serde(skip)]
    hidden_names: BTreeSet<String>,
}

/// Hidden scenarios as `GET /admin/faults` shows them: enough for `lab check` to tell
/// whether a learner named them, not enough to read the names off the page. `digest` is the
/// hex SHA-256 of `salt`, a colon, and the names sorted and joined with commas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hidden {
    pub count: usize,
    pub salt: String,
    pub digest: String,
}

impl Hidden {
    fn of(names: &BTreeSet<String>) -> Option<Self> {
        use sha2::{Digest as _, Sha256};
        if names.is_empty() {
            return None;
        }
        // A fresh salt per incident, so equal answers of two incidents do not look alike.
        let salt = format!("{:016x}", rand::rng().random::<u64>());
        let joined = names.iter().cloned().collect::<Vec<_>>().join(",");
        let digest = Sha256::digest(format!("{salt}:{joined}"));
        Some(Self {
            count: names.len(),
            salt,
            digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

/// A partial update, as `POST /admin/faults` accepts it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub error_rate: Option<f64>,
    pub latency_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub scenarios: Option<Vec<String>>,
    /// Replaces the hidden scenarios (an empty list ends an incident).
    pub hidden_scenarios: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    #[error("error_rate must be between 0 and 1, got {0}")]
    ErrorRate(f64),
    #[error("unknown scenario {name:?}; known scenarios: {known}")]
    UnknownScenario { name: String, known: String },
    #[error("{variable}={value:?} is not valid: {reason}")]
    Env {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid JSON body: {0}")]
    Body(String),
}

impl FaultSettings {
    fn apply(&self, update: FaultUpdate) -> Result<Self, FaultError> {
        let mut next = self.clone();
        if let Some(rate) = update.error_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultError::ErrorRate(rate));
            }
            next.error_rate = rate;
        }
        if let Some(latency) = update.latency_ms {
            next.latency_ms = latency;
        }
        if let Some(jitter) = update.jitter_ms {
            next.jitter_ms = jitter;
        }
        if let Some(scenarios) = update.scenarios {
            next.scenarios = known(scenarios)?;
        }
        if let Some(hidden) = update.hidden_scenarios {
            next.hidden_names = known(hidden)?;
            next.hidden = Hidden::of(&next.hidden_names);
        }
        Ok(next)
    }
}

/// The names, trimmed, each one a [`KNOWN_SCENARIOS`] name.
fn known(names: Vec<String>) -> Result<BTreeSet<String>, FaultError> {
    names
        .into_iter()
        .map(|name| {
            let name = name.trim().to_owned();
            if KNOWN_SCENARIOS.contains(&name.as_str()) {
                Ok(name)
            } else {
                Err(FaultError::UnknownScenario {
                    name,
                    known: KNOWN_SCENARIOS.join(", "),
                })
            }
        })
        .collect()
}

/// Shared, live fault settings. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    settings: Arc<RwLock<FaultSettings>>,
}

fn env_value<T: std::str::FromStr>(variable: &'static str) -> Result<Option<T>, FaultError>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => {
            value
                .trim()
                .parse()
                .map(Some)
                .map_err(|err: T::Err| FaultError::Env {
                    variable,
                    value,
                    reason: err.to_string(),
                })
        }
        _ => Ok(None),
    }
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The settings from `FAULT_ERROR_RATE`, `FAULT_LATENCY_MS`, `FAULT_JITTER_MS` and
    /// `FAULT_SCENARIOS`; unset variables mean no fault.
    pub fn from_env() -> Result<Self, FaultError> {
        let scenarios = std::env::var("FAULT_SCENARIOS").ok().map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let update = FaultUpdate {
            error_rate: env_value("FAULT_ERROR_RATE")?,
            latency_ms: env_value("FAULT_LATENCY_MS")?,
            jitter_ms: env_value("FAULT_JITTER_MS")?,
            scenarios,
            hidden_scenarios: None,
        };
        let settings = FaultSettings::default()
            .apply(update)
            .map_err(|err| FaultError::Env {
                variable: "FAULT_*",
                value: String::new(),
                reason: err.to_string(),
            })?;
        Ok(Self {
            settings: Arc::new(RwLock::new(settings)),
        })
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> FaultSettings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies a partial update; on error nothing changes.
    pub fn update(&self, update: FaultUpdate) -> Result<FaultSettings, FaultError> {
        let mut guard = self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = guard.apply(update)?;
        *guard = next.clone();
        tracing::info!(settings = ?next, "fault settings changed");
        Ok(next)
    }

    /// Whether the named scenario is active (shown or hidden).
    pub fn scenario(&self, name: &str) -> bool {
        let settings = self
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        settings.scenarios.contains(name) || settings.hidden_names.contains(name)
    }

    /// Marks the current span with a [`FAULT_INJECTED`] event: `scenario` acted here. A span
    /// event rather than an attribute so that one span can carry several (an order can meet
    /// more than one planted problem). Not when the scenario is hidden: an incident's problems
    /// leave only the traces a real one would.
    pub fn mark_injected(&self, scenario: &'static str) {
        let hidden = self
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hidden_names
            .contains(scenario);
        if !hidden {
            add_injected_event(scenario);
        }
    }

    /// `GET|POST /admin/faults`, to merge into a service's router.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        axum::Router::new()
            .route("/admin/faults", get(show).post(change))
            .with_state(self.clone())
    }

    /// The middleware applying latency and error rate; see the module docs.
    pub fn layer(&self) -> FaultLayer {
        FaultLayer {
            faults: self.clone(),
        }
    }

    /// What to do to one request now: the delay and whether to fail it.
    fn draw(&self) -> (Duration, bool) {
        let settings = self.settings();
        let mut rng = rand::rng();
        let jitter = if settings.jitter_ms > 0 {
            rng.random_range(0..=settings.jitter_ms)
        } else {
            0
        };
        let fail = settings.error_rate > 0.0 && rng.random_bool(settings.error_rate);
        (Duration::from_millis(settings.latency_ms + jitter), fail)
    }
}

async fn show(State(faults): State<Faults>) -> Json<FaultSettings> {
    Json(faults.settings())
}

async fn change(State(faults): State<Faults>, body: Bytes) -> Response {
    let update = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(FaultUpdate::default())
    } else {
        serde_json::from_slice::<FaultUpdate>(&body)
            .map_err(|err| FaultError::Body(err.to_string()))
    };
    match update.and_then(|update| faults.update(update)) {
        Ok(settings) => Json(settings).into_response(),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": err.to_string() })),
        )
            .into_response(),
    }
}

/// Tower layer made by [`Faults::layer`].
#[derive(Debug, Clone)]
pub struct FaultLayer {
    faults: Faults,
}

impl<S> tower::Layer<S> for FaultLayer {
    type Service = FaultService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            faults: self.faults.clone(),
        }
    }
}

/// The service [`FaultLayer`] wraps around each route.
#[derive(Debug, Clone)]
pub struct FaultService<S> {
    inner: S,
    faults: Faults,
}

fn exempt(path: &str) -> bool {
    path == "/healthz" || path == "/admin" || path.starts_with("/admin/")
}

impl<S> tower::Service<Request> for FaultService<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if exempt(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        let (delay, fail) = self.faults.draw();
        Box::pin(async move {
            if !delay.is_zero() {
                tracing::debug!(delay_ms = delay.as_millis() as u64, "injecting latency");
                tokio::time::sleep(delay).await;
            }
            if fail {
                tracing::warn!("injected fault: answering 503");
                return Ok((
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({
                        "error": "injected fault: the error_rate of /admin/faults failed this request",
                        "fault": "error_rate",
                    })),
                )
                    .into_response());
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_rejects_error_rate_above_one_and_keeps_old_settings() {
        let faults = Faults::new();
        let err = faults
            .update(FaultUpdate {
                error_rate: Some(1.5),
                ..FaultUpdate::default()
            })
            .unwrap_err();
        assert_eq!(err, FaultError::ErrorRate(1.5));
        assert_eq!(faults.settings(), FaultSettings::default());
    }

    #[test]
    fn update_rejects_unknown_scenario_naming_the_known_ones() {
        let faults = Faults::new();
        let err = faults
            .update(FaultUpdate {
                scenarios: Some(vec!["slow_everything".into()]),
                ..FaultUpdate::default()
            })
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("slow_everything"), "{message}");
        assert!(message.contains("payment_gateway_timeout"), "{message}");
    }

    #[test]
    fn hidden_scenarios_act_but_show_only_a_count_and_a_digest() {
        use sha2::{Digest as _, Sha256};
        let faults = Faults::new();
        faults
            .update(FaultUpdate {
                scenarios: Some(vec!["inventory_lock".into()]),
                hidden_scenarios: Some(vec!["span_per_item".into(), "n_plus_one_queries".into()]),
                ..FaultUpdate::default()
            })
            .unwrap();
        assert!(faults.scenario("span_per_item") && faults.scenario("inventory_lock"));
        let shown = serde_json::to_value(faults.settings()).unwrap();
        assert_eq!(shown["scenarios"], serde_json::json!(["inventory_lock"]));
        assert_eq!(shown["hidden"]["count"], 2);
        assert!(!shown.to_string().contains("span_per_item"), "{shown}");
        let salt = shown["hidden"]["salt"].as_str().unwrap();
        let expected: String = Sha256::digest(format!("{salt}:n_plus_one_queries,span_per_item"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(shown["hidden"]["digest"], expected);

        // A plain update keeps the incident; an empty list ends it.
        faults
            .update(FaultUpdate {
                scenarios: Some(vec![]),
                ..FaultUpdate::default()
            })
            .unwrap();
        assert!(faults.scenario("span_per_item"));
        faults
            .update(FaultUpdate {
                hidden_scenarios: Some(vec![]),
                ..FaultUpdate::default()
            })
            .unwrap();
        assert!(!faults.scenario("span_per_item"));
        assert!(
            serde_json::to_value(faults.settings())
                .unwrap()
                .get("hidden")
                .is_none()
        );
        let err = faults
            .update(FaultUpdate {
                hidden_scenarios: Some(vec!["nope".into()]),
                ..FaultUpdate::default()
            })
            .unwrap_err();
        assert!(matches!(err, FaultError::UnknownScenario { .. }));
    }

    #[test]
    fn scenario_is_active_after_update_and_partial_update_keeps_other_fields() {
        let faults = Faults::new();
        faults
            .update(FaultUpdate {
                latency_ms: Some(40),
                scenarios: Some(vec!["inventory_lock".into()]),
                ..FaultUpdate::default()
            })
            .unwrap();
        faults
            .update(FaultUpdate {
                error_rate: Some(0.25),
                ..FaultUpdate::default()
            })
            .unwrap();
        assert!(faults.scenario("inventory_lock"));
        assert!(!faults.scenario("fraud_reject_all"));
        let settings = faults.settings();
        assert_eq!(settings.latency_ms, 40);
        assert_eq!(settings.error_rate, 0.25);
    }

    #[test]
    fn admin_and_health_routes_are_exempt_from_faults() {
        assert!(exempt("/healthz"));
        assert!(exempt("/admin/faults"));
        assert!(!exempt("/orders"));
        assert!(!exempt("/administrator"));
    }
}
