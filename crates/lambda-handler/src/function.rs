//! The Lambda handler: a Function URL event in, a Function URL response out, with the
//! invocation traced as a continuation of the caller's trace, measured, and flushed before
//! returning.
//!
//! Faults come from the `FAULT_*` environment variables (the shared [`telemetry::faults`]
//! settings), read once when the execution environment starts, which is how a Lambda
//! function sees configuration: to change them, change the function's configuration
//! (`aws lambda update-function-configuration --environment ...`, or `POST /admin/faults`
//! on the local emulator, which does the same) and the next execution environment starts
//! with them. `latency_ms`/`jitter_ms` delay the invocation, `error_rate` fails it as a
//! function error (Lambda answers the Function URL caller 502), the scenario
//! `fraud_reject_all` rejects every order. `GET /admin/faults` answers with this
//! environment's settings; `POST` is refused, since a function cannot change its own
//! configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header};
use lambda_runtime::{Diagnostic, LambdaEvent};
use opentelemetry::trace::TraceContextExt as _;
use rand::Rng as _;
use serde_json::json;
use telemetry::faults::{FaultError, FaultSettings, Faults};
use tracing::{Instrument as _, field};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::flush::{FlushFn, Flusher};
use crate::fraud::{self, FraudCheckRequest, REJECT_ALL_SCENARIO};
use crate::metrics::InvocationMetrics;

/// True until the first invocation of this process: Lambda runs one process per execution
/// environment, so only its first invocation pays the cold start.
static COLD_START: AtomicBool = AtomicBool::new(true);

/// The path of the fault settings, as on every workload of the lab.
pub const ADMIN_FAULTS_PATH: &str = "/admin/faults";

/// The `errorType` of an invocation failed on purpose by `error_rate`.
pub const INJECTED_FAULT: &str = "InjectedFault";

/// The fraud-check function, configured once per execution environment.
#[derive(Clone)]
pub struct FraudCheckFunction {
    function_name: String,
    function_version: String,
    faults: FaultSettings,
    metrics: InvocationMetrics,
    flusher: Flusher,
}

impl FraudCheckFunction {
    /// Reads the function's identity from Lambda's environment and its faults from
    /// `FAULT_ERROR_RATE`, `FAULT_LATENCY_MS`, `FAULT_JITTER_MS` and `FAULT_SCENARIOS`;
    /// invalid fault settings fail the initialisation. Metrics go to the global meter
    /// provider, `flush` exports everything at the end of each invocation.
    pub fn from_env(flush: FlushFn) -> Result<Self, FaultError> {
        Ok(Self::new(
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "fraud-check".to_owned()),
            std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_else(|_| "$LATEST".to_owned()),
            Faults::from_env()?.settings(),
            &opentelemetry::global::meter(env!("CARGO_PKG_NAME")),
            flush,
        ))
    }

    /// The function with explicit settings.
    pub fn new(
        function_name: String,
        function_version: String,
        faults: FaultSettings,
        meter: &opentelemetry::metrics::Meter,
        flush: FlushFn,
    ) -> Self {
        Self {
            function_name,
            function_version,
            faults,
            metrics: InvocationMetrics::new(meter),
            flusher: Flusher::new(flush),
        }
    }

    /// The fault settings this execution environment started with.
    pub fn faults(&self) -> &FaultSettings {
        &self.faults
    }

    /// Handles one invocation. The telemetry is flushed before the response goes back:
    /// once Lambda has the response it may freeze the environment, and unflushed spans,
    /// logs and metrics would be lost or exported minutes late. The flush is bounded (see
    /// [`crate::flush`]) so a slow collector cannot fail the fraud check.
    pub async fn invoke(
        &self,
        event: LambdaEvent<LambdaFunctionUrlRequest>,
    ) -> Result<LambdaFunctionUrlResponse, Diagnostic> {
        let started = Instant::now();
        let coldstart = COLD_START.swap(false, Ordering::SeqCst);
        let LambdaEvent { payload, context } = event;
        let http = &payload.request_context.http;
        let method = http.method.clone().unwrap_or_else(|| "POST".to_owned());
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let span = tracing::info_span!(
            "fraud-check invocation",
            otel.name = %self.function_name,
            otel.kind = "server",
            otel.status_code = field::Empty,
            otel.status_message = field::Empty,
            faas.trigger = "http",
            faas.invocation_id = %context.request_id,
            faas.coldstart = coldstart,
            faas.name = %self.function_name,
            faas.version = %self.function_version,
            cloud.provider = "aws",
            cloud.platform = "aws_lambda",
            cloud.resource_id = %context.invoked_function_arn,
            http.request.method = %method,
            url.path = %path,
            http.response.status_code = field::Empty,
            error.type = field::Empty,
        );
        // Continue the caller's trace (order-service's client span) when it sent one.
        let parent = telemetry::propagation::extract(&payload.headers);
        for attribute in telemetry::propagation::baggage_attributes(&parent) {
            span.set_attribute(attribute.key, attribute.value);
        }
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }

        let outcome = self
            .handle(&method, &path, &payload)
            .instrument(span.clone())
            .await;
        match &outcome {
            Ok(response) => {
                span.record("http.response.status_code", response.status_code);
                if response.status_code >= 500 {
                    span.record("otel.status_code", "error");
                    span.record("error.type", response.status_code.to_string());
                }
            }
            Err(error) => {
                span.record("otel.status_code", "error");
                span.record("otel.status_message", error.error_message.as_str());
                span.record("error.type", error.error_type.as_str());
            }
        }
        // Recorded, and the span ended, before the flush: only then are they part of it.
        self.metrics
            .record_invocation(started.elapsed(), coldstart, outcome.is_err());
        drop(span);
        self.flusher
            .flush_invocation("fraud-check", &context.request_id, context.deadline())
            .await;
        outcome
    }

    async fn handle(
        &self,
        method: &str,
        path: &str,
        payload: &LambdaFunctionUrlRequest,
    ) -> Result<LambdaFunctionUrlResponse, Diagnostic> {
        if path == ADMIN_FAULTS_PATH {
            return Ok(self.admin_faults(method));
        }
        let (delay, fail) = draw(&self.faults);
        if !delay.is_zero() {
            tracing::debug!(delay_ms = delay.as_millis() as u64, "injecting latency");
            tokio::time::sleep(delay).await;
        }
        if fail {
            tracing::warn!("injected fault: failing this invocation");
            return Err(Diagnostic {
                error_type: INJECTED_FAULT.to_owned(),
                error_message: "injected fault: the error_rate of FAULT_ERROR_RATE / POST /admin/faults failed this invocation".to_owned(),
            });
        }
        Ok(self
            .respond(payload, self.faults.scenarios.contains(REJECT_ALL_SCENARIO))
            .await)
    }

    /// `GET /admin/faults` shows this environment's settings. A function cannot change its
    /// own configuration, so `POST` says how to (the local emulator answers both itself).
    fn admin_faults(&self, method: &str) -> LambdaFunctionUrlResponse {
        if method.eq_ignore_ascii_case("GET") {
            return json_response(
                200,
                &serde_json::to_value(&self.faults).expect("fault settings serialise"),
            );
        }
        let mut response = json_response(
            405,
            &json!({
                "error": format!(
                    "{} reads its faults from FAULT_* when an execution environment starts; change them \
                     with `aws lambda update-function-configuration --function-name {} --environment \
                     Variables={{FAULT_SCENARIOS=fraud_reject_all}}` (the lab's emulator does this on POST)",
                    self.function_name, self.function_name
                )
            }),
        );
        response
            .headers
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        response
    }

    async fn respond(
        &self,
        payload: &LambdaFunctionUrlRequest,
        reject_all: bool,
    ) -> LambdaFunctionUrlResponse {
        let body = match decode_body(payload) {
            Ok(body) => body,
            Err(message) => return json_response(400, &json!({ "error": message })),
        };
        let request: FraudCheckRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(error = %e, "rejected a fraud check with an invalid body");
                return json_response(
                    400,
                    &json!({ "error": format!("invalid fraud check request: {e}") }),
                );
            }
        };
        if let Err(e) = request.validate() {
            tracing::warn!(error = %e, order.id = %request.order_id, "rejected an invalid fraud check");
            return json_response(400, &json!({ "error": e.to_string() }));
        }

        let span = tracing::info_span!(
            "fraud_check.score",
            order.id = %request.order_id,
            customer.id = %request.customer_id,
            order.amount_cents = request.amount_cents,
            order.item_count = request.item_count,
            fraud.score = field::Empty,
            fraud.decision = field::Empty,
            fraud.reasons = field::Empty,
        );
        // The model's inference time, inside its span: a real scoring service answers in tens
        // of milliseconds, which is what a checkout pays when it waits for the verdict.
        tokio::time::sleep(inference_latency())
            .instrument(span.clone())
            .await;
        let assessment = span.in_scope(|| {
            let assessment = fraud::assess(&request, reject_all);
            self.metrics.record_decision(assessment.decision);
            span.record("fraud.score", assessment.score);
            span.record("fraud.decision", assessment.decision.as_str());
            span.record("fraud.reasons", assessment.reasons.join(",").as_str());
            tracing::info!(
                order.id = %request.order_id,
                decision = assessment.decision.as_str(),
                score = assessment.score,
                "scored order {}: {}",
                request.order_id,
                assessment.decision.as_str()
            );
            assessment
        });
        json_response(
            200,
            &serde_json::to_value(&assessment).expect("an assessment serialises"),
        )
    }
}

/// Scoring time: log-normal, median about 20 ms, clamped to 8..=100 ms. (The emulator runs one
/// execution environment, so under concurrent load invocations queue behind this.)
fn inference_latency() -> Duration {
    telemetry::faults::skewed_latency(20.0, 0.5, 8.0, 100.0)
}

/// The injected delay and whether to fail, drawn once per invocation from the settings.
fn draw(faults: &FaultSettings) -> (Duration, bool) {
    let mut rng = rand::rng();
    let jitter = if faults.jitter_ms > 0 {
        rng.random_range(0..=faults.jitter_ms)
    } else {
        0
    };
    let fail = faults.error_rate > 0.0 && rng.random_bool(faults.error_rate.min(1.0));
    (Duration::from_millis(faults.latency_ms + jitter), fail)
}

fn decode_body(payload: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, String> {
    let Some(body) = payload.body.as_deref().filter(|b| !b.is_empty()) else {
        return Err(
            "expected a JSON body: {order_id, customer_id, amount_cents, item_count}".into(),
        );
    };
    if payload.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("the body is marked base64 but is not: {e}"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn json_response(status: i64, body: &serde_json::Value) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(body.to_string());
    response.is_base64_encoded = false;
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn function(faults: FaultSettings, flushes: Arc<AtomicUsize>) -> FraudCheckFunction {
        FraudCheckFunction::new(
            "fraud-check".into(),
            "$LATEST".into(),
            faults,
            &opentelemetry::global::meter("test"),
            Arc::new(move || {
                flushes.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    fn event(
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> LambdaEvent<LambdaFunctionUrlRequest> {
        let payload = serde_json::from_value(json!({
            "headers": {},
            "requestContext": {"http": {"method": method, "path": path}, "timeEpoch": 0},
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false,
        }))
        .expect("a Function URL event");
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        context.deadline = (std::time::SystemTime::now() + Duration::from_secs(10))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        LambdaEvent::new(payload, context)
    }

    fn order() -> serde_json::Value {
        json!({"order_id": "o-1", "customer_id": "cust-42", "amount_cents": 100, "item_count": 1})
    }

    fn body(response: &LambdaFunctionUrlResponse) -> serde_json::Value {
        serde_json::from_str(response.body.as_deref().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn every_invocation_is_flushed_before_it_returns() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let function = function(FaultSettings::default(), flushes.clone());
        for n in 1..=2 {
            let response = function
                .invoke(event("POST", "/", Some(order())))
                .await
                .unwrap();
            assert_eq!(response.status_code, 200);
            assert_eq!(flushes.load(Ordering::SeqCst), n);
        }
    }

    #[tokio::test]
    async fn the_scenarios_and_error_rate_of_the_environment_apply() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let mut faults = FaultSettings::default();
        faults.scenarios.insert(REJECT_ALL_SCENARIO.to_owned());
        let response = function(faults, flushes.clone())
            .invoke(event("POST", "/", Some(order())))
            .await
            .unwrap();
        assert_eq!(body(&response)["decision"], "reject");

        let mut faults = FaultSettings::default();
        faults.error_rate = 1.0;
        let error = function(faults, flushes.clone())
            .invoke(event("POST", "/", Some(order())))
            .await
            .unwrap_err();
        assert_eq!(error.error_type, INJECTED_FAULT);
        assert_eq!(
            flushes.load(Ordering::SeqCst),
            2,
            "a failed invocation is flushed too"
        );
    }

    #[tokio::test]
    async fn admin_faults_shows_the_environment_and_refuses_changes() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let mut faults = FaultSettings::default();
        faults.scenarios.insert(REJECT_ALL_SCENARIO.to_owned());
        let function = function(faults, flushes);

        let response = function
            .invoke(event("GET", ADMIN_FAULTS_PATH, None))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(body(&response)["scenarios"], json!(["fraud_reject_all"]));

        let response = function
            .invoke(event(
                "POST",
                ADMIN_FAULTS_PATH,
                Some(json!({"scenarios": []})),
            ))
            .await
            .unwrap();
        assert_eq!(response.status_code, 405);
        assert_eq!(response.headers[header::ALLOW], "GET");
        let error = body(&response)["error"].as_str().unwrap().to_owned();
        assert!(error.contains("update-function-configuration"), "{error}");
    }
}
