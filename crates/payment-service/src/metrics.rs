//! The business metrics of payments (see the crate docs for names and units).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

/// Boundaries for `payments.amount` in minor units: 5 .. 10 000 in major units.
const AMOUNT_BOUNDARIES: [f64; 11] = [
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    25_000.0,
    50_000.0,
    100_000.0,
    250_000.0,
    500_000.0,
    1_000_000.0,
];

#[derive(Clone)]
pub struct PaymentMetrics {
    authorized: Counter<u64>,
    declined: Counter<u64>,
    amount: Histogram<f64>,
}

impl PaymentMetrics {
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("payment-service");
        Self {
            authorized: meter
                .u64_counter("payments.authorized")
                .with_unit("{payment}")
                .with_description("Payments the card gateway authorised.")
                .build(),
            declined: meter
                .u64_counter("payments.declined")
                .with_unit("{payment}")
                .with_description("Payments the card gateway declined.")
                .build(),
            amount: meter
                .f64_histogram("payments.amount")
                .with_unit("{minor_unit}")
                .with_description("Requested payment amounts, in the currency's minor units.")
                .with_boundaries(AMOUNT_BOUNDARIES.to_vec())
                .build(),
        }
    }

    pub fn record(&self, outcome: &str, currency: &str, amount_minor: i64) {
        let currency = KeyValue::new("payment.currency", currency.to_owned());
        match outcome {
            "authorized" => self.authorized.add(1, std::slice::from_ref(&currency)),
            "declined" => self.declined.add(1, std::slice::from_ref(&currency)),
            _ => {}
        }
        self.amount.record(
            amount_minor as f64,
            &[
                currency,
                KeyValue::new("payment.outcome", outcome.to_owned()),
            ],
        );
    }
}

impl Default for PaymentMetrics {
    fn default() -> Self {
        Self::new()
    }
}
