//! payment-service: authorises card payments for the otel-lab shop, simulated as an ECS
//! Fargate task (it exports OTLP to a sidecar collector in its task, which forwards to the
//! gateway). order-service calls `POST /payments` once stock is reserved and the fraud check
//! approved; the `payment.authorize` span wraps a `payment.gateway_call` to a simulated card
//! gateway with realistic, skewed latency. Outcomes: 201 authorized, 402 declined (the card's
//! problem, not a server error), 504 when the gateway misses its deadline (a server-side
//! error). Card tokens steer the outcome: `tok_declined` declines, `tok_timeout` times out,
//! any other `tok_*` is approved. Fault scenarios: `payment_gateway_timeout`,
//! `payment_decline_all`.
//!
//! Metrics: `payments.authorized`, `payments.declined` and `payments.timed_out` (counters,
//! `{payment}`, attribute `payment.currency`: one per outcome, so every attempt that reached
//! the gateway is in exactly one), and `payments.amount`, a histogram of requested amounts
//! in the currency's minor units (unit `{minor_unit}`, e.g. cents; attribute
//! `payment.currency` says which currency) with `payment.outcome` = authorized | declined |
//! timeout. A request refused as invalid (400) never reaches the gateway and is not counted.

pub mod app;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod metrics;
pub mod routes;
