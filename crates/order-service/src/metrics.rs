//! Business metrics of orders (names and units in the crate docs).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

/// Boundaries for `orders.value` in minor units: 5 .. 10 000 in major units.
const VALUE_BOUNDARIES: [f64; 11] = [
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
pub struct OrderMetrics {
    created: Counter<u64>,
    value: Histogram<f64>,
}

impl OrderMetrics {
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("order-service");
        Self {
            created: meter
                .u64_counter("orders.created")
                .with_unit("{order}")
                .with_description("Orders processed, by final status.")
                .build(),
            value: meter
                .f64_histogram("orders.value")
                .with_unit("{minor_unit}")
                .with_description("Order totals, in the currency's minor units.")
                .with_boundaries(VALUE_BOUNDARIES.to_vec())
                .build(),
        }
    }

    pub fn record(&self, status: &str, tier: &str, total_cents: i64) {
        let attributes = [
            KeyValue::new("order.status", status.to_owned()),
            KeyValue::new("customer.tier", tier.to_owned()),
        ];
        self.created.add(1, &attributes);
        self.value.record(total_cents as f64, &attributes);
    }
}

impl Default for OrderMetrics {
    fn default() -> Self {
        Self::new()
    }
}
