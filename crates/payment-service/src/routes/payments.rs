//! `POST /payments` (authorise), `POST /payments/{id}/void` (lift an authorisation's hold)
//! and `POST /payments/{id}/capture` (take the money, once).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentelemetry::context::FutureExt as _;
use serde_json::json;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::app::AppState;
use crate::domain::{Payment, PaymentId, PaymentRequest, PaymentResult, VoidResult};
use crate::gateway::{GatewayDecision, GatewayOverrides};
use crate::metrics::PaymentOutcome;
use crate::store::Claim;

fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.to_string() })),
    )
        .into_response()
}

pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<PaymentRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let payment = match Payment::try_from(request) {
        Ok(payment) => payment,
        Err(err) => return bad_request(err),
    };
    let span = tracing::info_span!(
        "payment.authorize",
        order.id = %payment.order_id,
        payment.amount_cents = payment.amount_cents,
        payment.currency = %payment.currency,
        payment.id = Empty,
        payment.outcome = Empty,
        customer.tier = Empty,
    );
    if let Some(tier) = telemetry::propagation::current_baggage("customer.tier") {
        span.record("customer.tier", tier);
    }
    async move {
        let payment_id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        tracing::Span::current().record("payment.id", payment_id.as_str());
        let overrides = GatewayOverrides {
            timeout_all: state.faults.scenario("payment_gateway_timeout"),
            decline_all: state.faults.scenario("payment_decline_all"),
        };
        let decision = state.gateway.authorize(&payment, overrides).await;
        let (status, outcome, reason) = match decision {
            Ok(GatewayDecision::Approved { authorization_code }) => {
                tracing::info!(%authorization_code, "payment authorized");
                (StatusCode::CREATED, PaymentOutcome::Authorized, None)
            }
            Ok(GatewayDecision::Declined { reason }) => {
                // The card's problem, not ours: logged, but the span stays OK.
                tracing::warn!(%reason, "payment declined");
                (
                    StatusCode::PAYMENT_REQUIRED,
                    PaymentOutcome::Declined,
                    Some(reason),
                )
            }
            Err(err) => {
                telemetry::record_error(&err);
                tracing::error!(error = %err, "payment authorization failed");
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    PaymentOutcome::Timeout,
                    Some(err.to_string()),
                )
            }
        };
        tracing::Span::current().record("payment.outcome", outcome.as_str());
        state
            .metrics
            .record(outcome, &payment.currency, payment.amount_cents);
        let result = PaymentResult {
            payment_id,
            order_id: payment.order_id,
            status: outcome.as_str().to_owned(),
            amount_cents: payment.amount_cents,
            currency: payment.currency,
            reason,
        };
        (status, Json(result)).into_response()
    }
    .instrument(span)
    .await
}

pub async fn void(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let payment_id = match PaymentId::parse(&id) {
        Ok(id) => id,
        Err(err) => return bad_request(err),
    };
    let span = tracing::info_span!(
        "payment.void",
        payment.id = payment_id.as_str(),
        payment.outcome = Empty,
        customer.tier = Empty,
    );
    if let Some(tier) = telemetry::propagation::current_baggage("customer.tier") {
        span.record("customer.tier", tier);
    }
    async move {
        let overrides = GatewayOverrides {
            timeout_all: state.faults.scenario("payment_gateway_timeout"),
            decline_all: state.faults.scenario("payment_decline_all"),
        };
        let (status, outcome, reason) = match state.gateway.void(overrides).await {
            Ok(()) => {
                tracing::info!("payment voided");
                state.metrics.record_void();
                (StatusCode::OK, "voided", None)
            }
            Err(err) => {
                telemetry::record_error(&err);
                tracing::error!(error = %err, "voiding the payment failed");
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    Some(err.to_string()),
                )
            }
        };
        tracing::Span::current().record("payment.outcome", outcome);
        let result = VoidResult {
            payment_id: payment_id.as_str().to_owned(),
            status: outcome.to_owned(),
            reason,
        };
        (status, Json(result)).into_response()
    }
    .instrument(span)
    .await
}

/// The body of `POST /payments/{id}/capture`.
#[derive(Debug, serde::Deserialize)]
pub struct CaptureRequest {
    pub order_id: String,
}

/// Captures an authorised payment, once: a repeated capture answers 200 with
/// `"already_captured": true` and does not call the gateway; one that finds a capture of
/// the same payment under way answers 409 (try again); a gateway timeout 504 (nothing
/// captured, try again).
pub async fn capture(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<CaptureRequest>, JsonRejection>,
) -> Response {
    let payment_id = match PaymentId::parse(&id) {
        Ok(id) => id,
        Err(err) => return bad_request(err),
    };
    let order_id = match body {
        Ok(Json(request)) if !request.order_id.trim().is_empty() => request.order_id,
        Ok(_) => return bad_request("order_id must not be empty"),
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let span = tracing::info_span!(
        "payment.capture",
        payment.id = payment_id.as_str(),
        order.id = %order_id,
        payment.outcome = Empty,
        customer.tier = Empty,
    );
    if let Some(tier) = telemetry::propagation::current_baggage("customer.tier") {
        span.record("customer.tier", tier);
    }
    // Run to the end even if the caller hangs up: dropped between the claim and its
    // outcome, the capture would stay claimed and every retry would be told it is under way.
    let work = async move {
        let id = payment_id.as_str().to_owned();
        let answer = |status: StatusCode, outcome: &str, already: bool| {
            tracing::Span::current().record("payment.outcome", outcome);
            (
                status,
                Json(json!({
                    "payment_id": id,
                    "status": outcome,
                    "already_captured": already,
                })),
            )
                .into_response()
        };
        let failed = |err: &dyn std::error::Error| {
            telemetry::record_error(err);
            tracing::error!(error = %err, "capturing the payment failed");
        };
        match state.store.claim(id.clone(), order_id).await {
            Ok(Claim::AlreadyCaptured) => {
                tracing::info!("payment captured before; nothing to do");
                return answer(StatusCode::OK, "captured", true);
            }
            Ok(Claim::InProgress) => {
                return answer(StatusCode::CONFLICT, "capture_in_progress", false);
            }
            Ok(Claim::Claimed) => {}
            Err(err) => {
                failed(&err);
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "error", false);
            }
        }
        let overrides = GatewayOverrides {
            timeout_all: state.faults.scenario("payment_gateway_timeout"),
            decline_all: false,
        };
        match state.gateway.capture(overrides).await {
            Ok(()) => match state.store.finish(id.clone()).await {
                Ok(()) => {
                    tracing::info!("payment captured");
                    state.metrics.record_capture();
                    answer(StatusCode::OK, "captured", false)
                }
                Err(err) => {
                    // The gateway took the money but the record failed: say so loudly; the
                    // claim stays, so no retry captures it twice.
                    failed(&err);
                    answer(StatusCode::INTERNAL_SERVER_ERROR, "error", false)
                }
            },
            Err(err) => {
                failed(&err);
                if let Err(store_err) = state.store.give_back(id.clone()).await {
                    failed(&store_err);
                }
                answer(StatusCode::GATEWAY_TIMEOUT, "timeout", false)
            }
        }
    }
    .instrument(span)
    .with_current_context();
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "the capture task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
