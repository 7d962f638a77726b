//! `POST /orders` (the checkout) and `GET /orders/{id}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;
use serde_json::json;
use std::time::Duration;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::app::AppState;
use crate::clients::{Downstream, DownstreamError, PaymentOutcome, ReserveOutcome};
use crate::domain::{CreateOrderRequest, NewOrder, Order, OrderStatus};
use crate::metrics::{Checkout, NotStored};

/// Orders are charged in one currency in this shop.
const CURRENCY: &str = "USD";

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn order_response(order: Order) -> Response {
    let status = StatusCode::from_u16(order.http_status).unwrap_or(StatusCode::OK);
    (status, Json(order)).into_response()
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.store.get(id.clone()).await {
        Ok(Some(order)) => Json(order).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no order {id}") }),
        ),
        Err(err) => {
            telemetry::record_error(&err);
            tracing::error!(error = %err, "reading an order failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": err.to_string() }),
            )
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateOrderRequest>, JsonRejection>,
) -> Response {
    let metrics = state.metrics.clone();
    let faults = state.faults.clone();
    let per_customer = state
        .faults
        .scenario("customer_id_metric_label")
        .then(|| {
            body.as_ref()
                .ok()
                .map(|Json(r)| r.customer_id.trim().to_owned())
        })
        .flatten();
    let (checkout, response) = checkout(state, headers, body).await;
    // One place counts every way the checkout can end, so an early return cannot skip it.
    match per_customer {
        Some(customer_id) => {
            faults.mark_injected("customer_id_metric_label");
            metrics.count_with_customer_id(&checkout, &customer_id)
        }
        None => metrics.count(&checkout),
    }
    response
}

async fn checkout(
    state: AppState,
    headers: HeaderMap,
    body: Result<Json<CreateOrderRequest>, JsonRejection>,
) -> (Checkout, Response) {
    // Given back when the checkout returns; see `Store::check_out_connection`.
    let _connection = if state.faults.scenario("db_single_connection") {
        state.faults.mark_injected("db_single_connection");
        Some(state.store.check_out_connection().await)
    } else {
        None
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    if let Some(key) = &idempotency_key {
        match state.store.by_idempotency_key(key.clone()).await {
            Ok(Some(order)) => {
                tracing::info!(order.id = %order.id, "idempotency key seen before: returning the stored order");
                return (Checkout::Replayed, order_response(order));
            }
            Ok(None) => {}
            Err(err) => {
                telemetry::record_error(&err);
                tracing::error!(error = %err, "looking up the idempotency key failed");
                return (
                    Checkout::NotStored {
                        reason: NotStored::Failed,
                        tier: None,
                    },
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "error": err.to_string() }),
                    ),
                );
            }
        }
    }

    let new_order = tracing::info_span!("order_service.validate").in_scope(|| {
        let Json(request) = body.map_err(|rejection| rejection.body_text())?;
        NewOrder::try_from(request).map_err(|err| err.to_string())
    });
    let new_order = match new_order {
        Ok(order) => order,
        Err(message) => {
            tracing::info!(reason = %message, "order refused as invalid");
            return (
                Checkout::NotStored {
                    reason: NotStored::Invalid,
                    tier: None,
                },
                error(StatusCode::BAD_REQUEST, json!({ "error": message })),
            );
        }
    };

    let order_id = format!("ord_{}", uuid::Uuid::new_v4().simple());
    let tier = new_order.tier.as_str();
    // The tier rides along as baggage so inventory, fraud check and payment can record it.
    let span = telemetry::propagation::with_baggage([KeyValue::new("customer.tier", tier)], || {
        tracing::info_span!(
            "order_service.process_order",
            order.id = %order_id,
            order.item_count = new_order.item_count(),
            order.total = Empty,
            order.status = Empty,
            customer.tier = tier,
        )
    });
    process_order(state, new_order, order_id, idempotency_key)
        .instrument(span)
        .await
}

/// How the checkout ended, before it is stored.
struct Outcome {
    status: OrderStatus,
    http_status: StatusCode,
    payment_id: Option<String>,
    reason: Option<String>,
}

async fn process_order(
    state: AppState,
    order: NewOrder,
    order_id: String,
    idempotency_key: Option<String>,
) -> (Checkout, Response) {
    let span = tracing::Span::current();
    // Ended before an order was stored: the span says how, as orders.created does.
    let not_stored = |reason: NotStored, response: Response| {
        span.record("order.status", reason.as_str());
        let checkout = Checkout::NotStored {
            reason,
            tier: Some(order.tier),
        };
        (checkout, response)
    };
    let trace_id = {
        let cx = span.context();
        let span_context = cx.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| span_context.trace_id().to_string())
    };

    // 1. Price and reserve the items.
    let reservation = match state.downstream.reserve(&order_id, &order.items).await {
        Ok(ReserveOutcome::Reserved(reservation)) => reservation,
        Ok(ReserveOutcome::OutOfStock { sku, message }) => {
            tracing::info!(%sku, "order refused: out of stock");
            return not_stored(
                NotStored::OutOfStock,
                error(
                    StatusCode::CONFLICT,
                    json!({ "error": message, "sku": sku }),
                ),
            );
        }
        Ok(ReserveOutcome::Refused { sku, message }) => {
            tracing::info!(reason = %message, "order refused by inventory");
            return not_stored(
                NotStored::Invalid,
                error(
                    StatusCode::BAD_REQUEST,
                    json!({ "error": message, "sku": sku }),
                ),
            );
        }
        Err(err) => {
            telemetry::record_error(&err);
            tracing::error!(error = %err, "reserving stock failed");
            return not_stored(
                NotStored::Failed,
                error(StatusCode::BAD_GATEWAY, json!({ "error": err.to_string() })),
            );
        }
    };
    let total_cents = reservation.total_cents;
    span.record("order.total", total_cents);

    // 2. Fraud check (failing open) and payment authorisation. Neither needs the other's
    // answer, so the checkout waits for the longer of the two, not their sum. Authorising
    // before the verdict is safe: an authorisation is only a hold on the card, voided if
    // the fraud check says no.
    let outcome = {
        let fraud_check = async {
            let verdict = state
                .downstream
                .fraud_check(
                    &order_id,
                    &order.customer_id,
                    total_cents,
                    order.item_count(),
                )
                .await;
            match verdict {
                Ok(verdict) if verdict.rejects() => Some(verdict.score),
                Ok(_) => None,
                Err(err) => {
                    span.add_event(
                        "fraud_check.unavailable",
                        vec![
                            KeyValue::new("exception.message", err.to_string()),
                            KeyValue::new("fraud_check.fallback", "approve"),
                        ],
                    );
                    tracing::warn!(error = %err, "fraud check unavailable: approving the order (fail open)");
                    None
                }
            }
        };
        let drop_trace_context = state.faults.scenario("drop_trace_context");
        if drop_trace_context {
            state.faults.mark_injected("drop_trace_context");
        }
        let payment = state.downstream.pay(
            &order_id,
            total_cents,
            CURRENCY,
            &order.card_token,
            drop_trace_context,
        );
        if state.faults.scenario("sequential_downstream_calls") {
            // The planted problem: the payment waits for the verdict it does not need.
            state.faults.mark_injected("sequential_downstream_calls");
            match fraud_check.await {
                Some(score) => rejected(score, None),
                None => paid(payment.await),
            }
        } else {
            match tokio::join!(fraud_check, payment) {
                (Some(score), Ok(PaymentOutcome::Authorized { payment_id })) => {
                    void_authorisation(&state.downstream, &payment_id).await;
                    rejected(score, Some(payment_id))
                }
                // Declined or failed: there is no hold to lift.
                (Some(score), _) => rejected(score, None),
                (None, payment) => paid(payment),
            }
        }
    };

    // 3. Compensation: give the stock back when the order will not ship.
    if outcome.status != OrderStatus::Created {
        if let Err(err) = release_with_retry(&state.downstream, &order_id).await {
            // The order still gets stored; the stock stays held until someone releases it.
            telemetry::record_error(&err);
            tracing::error!(error = %err, "releasing reserved stock failed");
        } else {
            tracing::info!("reserved stock released");
        }
    }

    // 4. Persist.
    let stored = Order {
        id: order_id,
        status: outcome.status.as_str().to_owned(),
        customer_id: order.customer_id,
        customer_tier: order.tier.as_str().to_owned(),
        items: order.items,
        total_cents,
        currency: CURRENCY.to_owned(),
        trace_id,
        payment_id: outcome.payment_id,
        reason: outcome.reason,
        created_at: crate::time::now_rfc3339(),
        http_status: outcome.http_status.as_u16(),
    };
    let persisted = state
        .store
        .insert(stored, idempotency_key)
        .instrument(tracing::info_span!("order_service.persist"))
        .await;
    match persisted {
        Ok(order) => {
            span.record("order.status", order.status.as_str());
            if order.status == OrderStatus::Created.as_str()
                && let Some(outbox) = &state.outbox
            {
                outbox.wake();
            }
            tracing::info!(status = %order.status, total_cents = order.total_cents, "order processed");
            let checkout = Checkout::Stored {
                status: order.status.clone(),
                tier: order.customer_tier.clone(),
                total_cents: order.total_cents,
            };
            (checkout, order_response(order))
        }
        Err(err) => {
            telemetry::record_error(&err);
            tracing::error!(error = %err, "storing the order failed");
            not_stored(
                NotStored::Failed,
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": err.to_string() }),
                ),
            )
        }
    }
}

/// The fraud check said no, whatever the payment said. `voided_payment_id` is kept on the
/// order so the authorisation it held can be found.
fn rejected(score: f64, voided_payment_id: Option<String>) -> Outcome {
    tracing::info!(fraud.score = score, "fraud check rejected the order");
    Outcome {
        status: OrderStatus::Rejected,
        http_status: StatusCode::FORBIDDEN,
        payment_id: voided_payment_id,
        reason: Some(format!("fraud check rejected the order (score {score:.2})")),
    }
}

/// The fraud check let the order through (or could not be asked): the payment decides.
fn paid(payment: Result<PaymentOutcome, DownstreamError>) -> Outcome {
    match payment {
        Ok(PaymentOutcome::Authorized { payment_id }) => Outcome {
            status: OrderStatus::Created,
            http_status: StatusCode::CREATED,
            payment_id: Some(payment_id),
            reason: None,
        },
        Ok(PaymentOutcome::Declined { payment_id, reason }) => {
            tracing::info!(%reason, "payment declined");
            Outcome {
                status: OrderStatus::PaymentFailed,
                http_status: StatusCode::PAYMENT_REQUIRED,
                payment_id,
                reason: Some(format!("payment declined: {reason}")),
            }
        }
        Err(err) => {
            telemetry::record_error(&err);
            tracing::error!(error = %err, "payment failed");
            Outcome {
                status: OrderStatus::PaymentFailed,
                http_status: StatusCode::BAD_GATEWAY,
                payment_id: None,
                reason: Some(format!("payment failed: {err}")),
            }
        }
    }
}

/// Lifts the hold of an authorisation whose order will not ship. Not retried and never
/// fatal: an unvoided hold lapses at the card issuer on its own, so the order is stored as
/// rejected all the same, and the error on the span says which payment still holds money.
async fn void_authorisation(downstream: &Downstream, payment_id: &str) {
    match downstream.void(payment_id).await {
        Ok(()) => tracing::info!(payment.id = %payment_id, "payment authorisation voided"),
        Err(err) => {
            telemetry::record_error(&err);
            tracing::error!(error = %err, payment.id = %payment_id, "voiding the payment authorisation failed");
        }
    }
}

/// Releasing is idempotent (inventory releases only what is still held), so a failure that
/// may pass is tried again: three tries, 100 ms and 200 ms apart. Each try is its own client
/// span in the trace.
async fn release_with_retry(
    downstream: &Downstream,
    order_id: &str,
) -> Result<(), DownstreamError> {
    let mut wait = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match downstream.release(order_id, attempt - 1).await {
            Err(err) if attempt < 3 && err.may_pass() => {
                tracing::warn!(error = %err, attempt, "releasing reserved stock failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}
