//! The Lambda handler: a Function URL event in, a Function URL response out, with the
//! invocation traced as a continuation of the caller's trace and flushed before returning.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header};
use lambda_runtime::LambdaEvent;
use opentelemetry::trace::TraceContextExt as _;
use serde_json::json;
use tracing::{Instrument as _, field};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::fraud::{self, Faults, FraudCheckRequest};

/// True until the first invocation of this process: Lambda runs one process per execution
/// environment, so only its first invocation pays the cold start.
static COLD_START: AtomicBool = AtomicBool::new(true);

/// Exports what the invocation recorded; it blocks, so it runs on a blocking thread.
pub type FlushFn = Arc<dyn Fn() + Send + Sync>;

/// The fraud-check function, configured once per execution environment.
#[derive(Clone)]
pub struct FraudCheckFunction {
    function_name: String,
    function_version: String,
    faults: Faults,
    flush: FlushFn,
}

impl FraudCheckFunction {
    /// Reads the function's identity from Lambda's environment and faults from
    /// `FAULT_SCENARIOS`.
    pub fn from_env(flush: FlushFn) -> Self {
        Self {
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "fraud-check".to_owned()),
            function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|_| "$LATEST".to_owned()),
            faults: Faults::from_scenarios(&std::env::var("FAULT_SCENARIOS").unwrap_or_default()),
            flush,
        }
    }

    /// Handles one invocation. The telemetry is flushed before the response goes back:
    /// once Lambda has the response it may freeze the environment, and unflushed spans
    /// would be lost or exported minutes late.
    pub async fn invoke(
        &self,
        event: LambdaEvent<LambdaFunctionUrlRequest>,
    ) -> Result<LambdaFunctionUrlResponse, lambda_runtime::Error> {
        let LambdaEvent { payload, context } = event;
        let http = &payload.request_context.http;
        let method = http.method.clone().unwrap_or_else(|| "POST".to_owned());
        let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
        let span = tracing::info_span!(
            "fraud-check invocation",
            otel.name = %self.function_name,
            otel.kind = "server",
            otel.status_code = field::Empty,
            faas.trigger = "http",
            faas.invocation_id = %context.request_id,
            faas.coldstart = COLD_START.swap(false, Ordering::SeqCst),
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
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(&payload.headers))
        });
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }

        let response = async { self.respond(&payload) }
            .instrument(span.clone())
            .await;
        span.record("http.response.status_code", response.status_code);
        if response.status_code >= 500 {
            span.record("otel.status_code", "error");
            span.record("error.type", response.status_code.to_string());
        }
        // The span must end before the flush to be part of it.
        drop(span);
        let flush = self.flush.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || flush()).await {
            eprintln!("fraud-check: flushing telemetry failed: {e}");
        }
        Ok(response)
    }

    fn respond(&self, payload: &LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
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
        let assessment = span.in_scope(|| {
            let assessment = fraud::assess(&request, self.faults);
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
