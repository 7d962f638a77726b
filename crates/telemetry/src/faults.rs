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
pub const KNOWN_SCENARIOS: [&str; 10] = [
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
];

/// Name of the span event (and attribute key) that says a planted problem or fault acted
/// on a span; its `fault.name` attribute names the scenario.
pub const FAULT_INJECTED: &str = "fault.injected";

/// Marks the current span: `scenario` acted here. A span event rather than an attribute so
/// that one span can carry several (an order can meet more than one planted problem).
pub fn mark_injected(scenario: &'static str) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    tracing::Span::current().add_event(
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
}

/// A partial update, as `POST /admin/faults` accepts it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub error_rate: Option<f64>,
    pub latency_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub scenarios: Option<Vec<String>>,
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
            next.scenarios = BTreeSet::new();
            for name in scenarios {
                let name = name.trim().to_owned();
                if !KNOWN_SCENARIOS.contains(&name.as_str()) {
                    return Err(FaultError::UnknownScenario {
                        name,
                        known: KNOWN_SCENARIOS.join(", "),
                    });
                }
                next.scenarios.insert(name);
            }
        }
        Ok(next)
    }
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

    /// Whether the named scenario is active.
    pub fn scenario(&self, name: &str) -> bool {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .scenarios
            .contains(name)
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
