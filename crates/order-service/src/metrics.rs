//! Business metrics of orders (names and units in the crate docs).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};

use crate::domain::CustomerTier;

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

/// How one `POST /orders` ended, as `orders.created` counts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkout {
    /// An order was stored with `status` (created, rejected, payment_failed) and answered.
    Stored {
        status: String,
        tier: String,
        total_cents: i64,
    },
    /// The checkout ended before an order could be stored.
    NotStored {
        reason: NotStored,
        /// Unknown when the request was refused before it was read.
        tier: Option<CustomerTier>,
    },
    /// An `Idempotency-Key` seen before: the stored order is answered again. Not counted:
    /// the order was counted when it was processed, and counting it again would show one
    /// checkout as two (http.server.request.duration still counts the request).
    Replayed,
}

/// Why no order was stored: the `order.status` values beside the stored orders' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// 400: the request, or its items at inventory (unknown sku), was refused.
    Invalid,
    /// 409: not enough stock.
    OutOfStock,
    /// 5xx: a dependency (inventory) or order-service's own database failed.
    Failed,
}

impl NotStored {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::OutOfStock => "out_of_stock",
            Self::Failed => "failed",
        }
    }
}

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
                .with_description(
                    "Checkouts by how they ended (order.status): created, rejected, \
                     payment_failed (stored orders), invalid, out_of_stock, failed (none stored).",
                )
                .build(),
            value: meter
                .f64_histogram("orders.value")
                .with_unit("{minor_unit}")
                .with_description("Totals of stored orders, in the currency's minor units.")
                .with_boundaries(VALUE_BOUNDARIES.to_vec())
                .build(),
        }
    }

    /// Counts one checkout. Every answer of `POST /orders` goes through here, so the
    /// counter sees each outcome, not only the orders that were stored.
    pub fn count(&self, checkout: &Checkout) {
        self.count_for(checkout, None);
    }

    /// [`OrderMetrics::count`] with `customer.id` among the attributes: the planted
    /// `customer_id_metric_label` problem ("so we can see orders per customer"). Every
    /// customer becomes a series of its own in the SDK, the collector and Prometheus, for
    /// as long as they keep the series; who ordered belongs on the span, where an id costs
    /// one attribute.
    pub fn count_with_customer_id(&self, checkout: &Checkout, customer_id: &str) {
        self.count_for(checkout, Some(customer_id));
    }

    fn count_for(&self, checkout: &Checkout, customer_id: Option<&str>) {
        let customer = customer_id.map(|id| KeyValue::new("customer.id", id.to_owned()));
        match checkout {
            Checkout::Stored {
                status,
                tier,
                total_cents,
            } => {
                let mut attributes = vec![
                    KeyValue::new("order.status", status.clone()),
                    KeyValue::new("customer.tier", tier.clone()),
                ];
                attributes.extend(customer);
                self.created.add(1, &attributes);
                self.value.record(*total_cents as f64, &attributes);
            }
            Checkout::NotStored { reason, tier } => {
                let mut attributes = vec![KeyValue::new("order.status", reason.as_str())];
                // Left out rather than invented when unknown: the request was refused
                // before it said who the customer is.
                if let Some(tier) = tier {
                    attributes.push(KeyValue::new("customer.tier", tier.as_str()));
                    attributes.extend(customer);
                }
                self.created.add(1, &attributes);
            }
            Checkout::Replayed => {}
        }
    }
}

impl Default for OrderMetrics {
    fn default() -> Self {
        Self::new()
    }
}
