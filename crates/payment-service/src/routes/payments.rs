//! `POST /payments` (authorise) and `POST /payments/{id}/void` (lift an authorisation's hold).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::app::AppState;
use crate::domain::{Payment, PaymentId, PaymentRequest, PaymentResult, VoidResult};
use crate::gateway::{GatewayDecision, GatewayOverrides};
use crate::metrics::PaymentOutcome;

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
