//! order-service: the front door of the otel-lab shop, simulated as a Kubernetes pod (it
//! exports OTLP to the collector agent on its node). `POST /orders` runs the whole checkout
//! inside the `order_service.process_order` span: validate, reserve and price the items at
//! inventory-service, then ask the fraud-check Lambda and authorise the payment at
//! payment-service at the same time (neither needs the other's answer, so the checkout
//! waits for the longer one, not both), and persist the order in SQLite. The customer's
//! tier travels as W3C baggage (`customer.tier`) so every downstream span can be sliced by
//! it. An authorisation is only a hold on the card: when the fraud check rejects an order
//! whose payment was authorised, the authorisation is voided (`POST /payments/{id}/void`;
//! if that fails, the error is logged and recorded on the span, and the order is still
//! stored as `rejected`, with the payment id that still holds money). When the fraud check
//! rejects the order or the payment fails, the reserved stock is released again
//! (compensation) and the order is stored as `rejected` / `payment_failed`; a fraud
//! rejection wins over whatever the payment said.
//!
//! Answers of `POST /orders` (all with the order body `{id, status, total_cents, trace_id,
//! ...}` except 400/409): 201 `created`; 402 `payment_failed` (card declined); 403
//! `rejected` (fraud check); 502 `payment_failed` when payment-service timed out or failed
//! (a server-side error); 409 `{error, sku}` out of stock; 400 `{error}` invalid order or
//! unknown sku; 502 `{error}` when inventory-service is unavailable. If the fraud check is
//! unreachable or answers nonsense the order is *approved* (fail open: a shop prefers a
//! rare fraud to losing every sale while a dependency is down), with a
//! `fraud_check.unavailable` event on the span and a warning log. An `Idempotency-Key`
//! header makes a retry return the stored order (same status code) without redoing work.
//!
//! Metrics: `orders.created` (counter, `{order}`) counts every checkout once, by how it
//! ended: `order.status` is `created`, `rejected` or `payment_failed` for a stored order,
//! `invalid` (400), `out_of_stock` (409) or `failed` (5xx: inventory unavailable, database
//! failure) when none was stored; `customer.tier` when known (not on a request refused
//! before it was read). An `Idempotency-Key` replay is not counted again. `orders.value`
//! (histogram of stored orders' totals in minor units, unit `{minor_unit}`, same
//! attributes). Every statement on the orders table: `db.client.operation.duration`.
//!
//! The workshop's planted problems (fault scenarios, each marked by a `fault.injected`
//! event where it acts): `db_single_connection` (a checkout holds the one database
//! connection from start to end, so concurrent checkouts queue: `wait for connection`),
//! `drop_trace_context` (the payment call goes out without `traceparent`: payment-service
//! starts a second trace), `customer_id_metric_label` (`orders.created` and
//! `orders.value` carry `customer.id`: a series per customer) and
//! `sequential_downstream_calls` (the fraud check runs first and the payment only once it
//! approved, as the checkout once did: the checkout takes the sum of both calls; nothing is
//! authorised for a rejected order, so nothing is voided) and `drop_message_context` (the
//! outbox relay sends `order.placed` without its trace context: the fulfilment cannot link
//! back to the order).

pub mod app;
pub mod clients;
pub mod config;
pub mod domain;
pub mod event_queue;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod store;
pub mod time;
