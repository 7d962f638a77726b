//! The function's metrics, recorded once per invocation and exported by the per-invocation
//! flush with the invocation's spans and logs.
//!
//! - `faas.invoke_duration` (histogram, s), `faas.coldstarts` (counter, `{coldstart}`) and
//!   `faas.errors` (counter, `{error}`), as the FaaS metric semantic conventions define them,
//!   each with `faas.trigger` (the only attribute those conventions give them; the
//!   function's name, version and instance are resource attributes already).
//! - `fraud_check.decisions` (counter, `{decision}`) with `fraud_check.decision` = `approve`
//!   | `reject`: the business outcome. Order and customer ids are on the
//!   `fraud_check.score` span, never on a metric label.
//!
//! Temporality is the OTLP default, cumulative: every flush carries the running totals of
//! this execution environment, and each environment has its own `service.instance.id`, so
//! a backend adds the environments up.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry_semantic_conventions::{attribute, metric};

use crate::fraud::FraudDecision;

/// The bucket boundaries the FaaS semantic conventions advise for `faas.invoke_duration`,
/// in seconds. The SDK's default boundaries assume milliseconds: every invocation would land
/// in the first bucket.
pub const INVOKE_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The business counter: one per scored order.
pub const DECISIONS: &str = "fraud_check.decisions";
/// Its one label, `approve` or `reject`.
pub const DECISION: &str = "fraud_check.decision";

/// The function's instruments; cheap to clone.
#[derive(Clone)]
pub struct InvocationMetrics {
    invoke_duration: Histogram<f64>,
    coldstarts: Counter<u64>,
    errors: Counter<u64>,
    decisions: Counter<u64>,
    /// `faas.trigger` of every invocation: `http` for a Function URL, `pubsub` for a queue.
    trigger: [KeyValue; 1],
}

impl InvocationMetrics {
    /// The metrics of a function invoked over its Function URL.
    pub fn new(meter: &Meter) -> Self {
        Self::for_trigger(meter, "http")
    }

    /// The metrics of a function whose invocations come from `trigger` (`faas.trigger`).
    pub fn for_trigger(meter: &Meter, trigger: &'static str) -> Self {
        Self {
            invoke_duration: meter
                .f64_histogram(metric::FAAS_INVOKE_DURATION)
                .with_unit("s")
                .with_description("Measures the duration of the function's logic execution")
                .with_boundaries(INVOKE_DURATION_BUCKETS.to_vec())
                .build(),
            coldstarts: meter
                .u64_counter(metric::FAAS_COLDSTARTS)
                .with_unit("{coldstart}")
                .with_description("Number of invocation cold starts")
                .build(),
            errors: meter
                .u64_counter(metric::FAAS_ERRORS)
                .with_unit("{error}")
                .with_description("Number of invocation errors")
                .build(),
            decisions: meter
                .u64_counter(DECISIONS)
                .with_unit("{decision}")
                .with_description("Orders scored by the fraud check, by decision")
                .build(),
            trigger: [KeyValue::new(attribute::FAAS_TRIGGER, trigger)],
        }
    }

    /// One finished invocation: how long the handler ran, whether it was the first of its
    /// execution environment, and whether it failed (the runtime reported an error).
    pub fn record_invocation(&self, duration: Duration, coldstart: bool, failed: bool) {
        self.invoke_duration
            .record(duration.as_secs_f64(), &self.trigger);
        if coldstart {
            self.coldstarts.add(1, &self.trigger);
        }
        if failed {
            self.errors.add(1, &self.trigger);
        }
    }

    /// One scored order.
    pub fn record_decision(&self, decision: FraudDecision) {
        self.decisions
            .add(1, &[KeyValue::new(DECISION, decision.as_str())]);
    }
}
