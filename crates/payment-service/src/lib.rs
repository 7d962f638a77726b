//! payment-service: authorises card payments for the otel-lab shop, simulated as an ECS
//! Fargate task (it exports OTLP to a sidecar collector in its task, which forwards to the
//! gateway). order-service calls `POST /payments` once stock is reserved, while its fraud
//! check runs; the `payment.authorize` span wraps a `payment.gateway_call` to a simulated
//! card gateway with realistic, skewed latency. Outcomes: 201 authorized, 402 declined (the
//! card's problem, not a server error), 504 when the gateway misses its deadline (a
//! server-side error). Card tokens steer the outcome: `tok_declined` declines,
//! `tok_timeout` times out, any other `tok_*` is approved.
//!
//! An authorisation is only a hold on the card (a later fulfilment step captures it), so
//! `POST /payments/{id}/void` lifts it again: order-service voids when the fraud check
//! rejects an order whose payment was already authorised. The `payment.void` span wraps a
//! shorter gateway call; answers 200 `{payment_id, status:
//! "voided"}`, 400 `{error}` for an id this service would never issue (the service keeps no
//! state, so only the id's shape is checked), 504 `{payment_id, status: "timeout"}` when
//! the gateway misses its deadline. Fault scenarios: `payment_gateway_timeout` (every
//! gateway call, authorisation or void, times out), `payment_decline_all` (every card is
//! declined; voids are not affected).
//!
//! Metrics: `payments.authorized`, `payments.declined` and `payments.timed_out` (counters,
//! `{payment}`, attribute `payment.currency`: one per outcome, so every attempt that reached
//! the gateway is in exactly one), and `payments.amount`, a histogram of requested amounts
//! in the currency's minor units (unit `{minor_unit}`, e.g. cents; attribute
//! `payment.currency` says which currency) with `payment.outcome` = authorized | declined |
//! timeout. A request refused as invalid (400) never reaches the gateway and is not counted.
//! `payments.voided` (counter, `{payment}`, no attributes: a void names only the payment,
//! not its currency) counts the voids the gateway confirmed; a void that timed out shows
//! as a 504 in the HTTP server metrics and an error span, not here.

pub mod app;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod metrics;
pub mod routes;
pub mod store;
