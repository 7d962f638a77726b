//! `POST /inventory/reserve`, `POST /inventory/release` and `POST /inventory/commit`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde_json::json;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::ApiError;
use crate::app::AppState;
use crate::domain::{ReleaseRequest, ReservationOrder, ReserveRequest};
use crate::store::Reservation;

/// Holds the scenario lock for the request while `inventory_lock` is active, so requests
/// queue behind each other and the wait shows up in traces.
async fn scenario_lock(state: &AppState) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    if !state.faults.scenario("inventory_lock") {
        return None;
    }
    let lock = state.scenario_lock.clone();
    Some(
        lock.lock_owned()
            .instrument(tracing::info_span!("inventory.wait_for_lock"))
            .await,
    )
}

/// Copies the caller's `customer.tier` baggage onto a business span.
fn record_customer_tier(span: &tracing::Span) {
    if let Some(tier) = telemetry::propagation::current_baggage("customer.tier") {
        span.record("customer.tier", tier);
    }
}

pub async fn reserve(
    State(state): State<AppState>,
    body: Result<Json<ReserveRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let order = ReservationOrder::try_from(request)?;
    let span = tracing::info_span!(
        "inventory.reserve_stock",
        order.id = %order.order_id,
        inventory.line_count = order.lines.len() as i64,
        inventory.unit_count = order.lines.values().map(|q| i64::from(*q)).sum::<i64>(),
        customer.tier = Empty,
        inventory.outcome = Empty,
    );
    record_customer_tier(&span);
    async move {
        let _locked = scenario_lock(&state).await;
        match state.store.reserve(order).await {
            Ok(reservation) => {
                tracing::Span::current().record("inventory.outcome", "reserved");
                tracing::info!(total_cents = reservation.total_cents, "stock reserved");
                Ok((StatusCode::OK, Json(reservation)))
            }
            Err(err) => {
                tracing::Span::current().record("inventory.outcome", "refused");
                tracing::info!(reason = %err, "reservation refused");
                Err(err.into())
            }
        }
    }
    .instrument(span)
    .await
}

/// The order id of a release or commit request, trimmed; 400 when the body is not one or
/// the id is empty.
fn order_id_of(body: Result<Json<ReleaseRequest>, JsonRejection>) -> Result<String, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let order_id = request.order_id.trim().to_owned();
    if order_id.is_empty() {
        return Err(ApiError::bad_request("order_id must not be empty"));
    }
    Ok(order_id)
}

pub async fn release(
    State(state): State<AppState>,
    body: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let order_id = order_id_of(body)?;
    let span = tracing::info_span!(
        "inventory.release_stock",
        order.id = %order_id,
        customer.tier = Empty,
        inventory.released_lines = Empty,
    );
    record_customer_tier(&span);
    async move {
        let _locked = scenario_lock(&state).await;
        let released = state.store.release(order_id.clone()).await?;
        tracing::Span::current().record("inventory.released_lines", released.len() as i64);
        tracing::info!(lines = released.len(), "stock released");
        Ok(Json(json!({ "order_id": order_id, "released": released })))
    }
    .instrument(span)
    .await
}

/// The fulfilment ships an order: its reservation becomes final. Idempotent: a second
/// commit of the same order answers 200 with `"already_committed": true`.
pub async fn commit(
    State(state): State<AppState>,
    body: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let order_id = order_id_of(body)?;
    let span = tracing::info_span!(
        "inventory.commit_reservation",
        order.id = %order_id,
        customer.tier = Empty,
        inventory.outcome = Empty,
    );
    record_customer_tier(&span);
    async move {
        let newly = state.store.commit(order_id.clone()).await?;
        let outcome = if newly {
            "committed"
        } else {
            "already_committed"
        };
        tracing::Span::current().record("inventory.outcome", outcome);
        tracing::info!(outcome, "reservation committed");
        Ok(Json(
            json!({ "order_id": order_id, "committed": true, "already_committed": !newly }),
        ))
    }
    .instrument(span)
    .await
}
