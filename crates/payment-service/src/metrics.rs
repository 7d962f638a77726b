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

/// How a payment attempt ended: the `payment.outcome` of `payments.amount`, and which
/// counter it adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The gateway authorised the payment (201).
    Authorized,
    /// The gateway declined the card (402).
    Declined,
    /// The gateway did not answer within its deadline (504).
    Timeout,
}

impl PaymentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Declined => "declined",
            Self::Timeout => "timeout",
        }
    }
}

#[derive(Clone)]
pub struct PaymentMetrics {
    authorized: Counter<u64>,
    declined: Counter<u64>,
    timed_out: Counter<u64>,
    voided: Counter<u64>,
    captured: Counter<u64>,
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
            timed_out: meter
                .u64_counter("payments.timed_out")
                .with_unit("{payment}")
                .with_description("Payments the card gateway did not answer in time.")
                .build(),
            voided: meter
                .u64_counter("payments.voided")
                .with_unit("{payment}")
                .with_description("Authorisations the card gateway voided.")
                .build(),
            captured: meter
                .u64_counter("payments.captured")
                .with_unit("{payment}")
                .with_description("Authorised payments the card gateway captured.")
                .build(),
            amount: meter
                .f64_histogram("payments.amount")
                .with_unit("{minor_unit}")
                .with_description("Requested payment amounts, in the currency's minor units.")
                .with_boundaries(AMOUNT_BOUNDARIES.to_vec())
                .build(),
        }
    }

    /// Counts one payment attempt that reached the gateway, whatever its outcome.
    pub fn record(&self, outcome: PaymentOutcome, currency: &str, amount_minor: i64) {
        let currency = KeyValue::new("payment.currency", currency.to_owned());
        // Exhaustive on purpose: a new outcome cannot be left uncounted without the compiler
        // saying so (timeouts once were).
        let counter = match outcome {
            PaymentOutcome::Authorized => &self.authorized,
            PaymentOutcome::Declined => &self.declined,
            PaymentOutcome::Timeout => &self.timed_out,
        };
        counter.add(1, std::slice::from_ref(&currency));
        self.amount.record(
            amount_minor as f64,
            &[currency, KeyValue::new("payment.outcome", outcome.as_str())],
        );
    }

    /// Counts one authorisation the gateway voided. Without `payment.currency`: a void
    /// names only the payment id, and this service keeps no record of what it authorised.
    pub fn record_void(&self) {
        self.voided.add(1, &[]);
    }
}

impl PaymentMetrics {
    /// Counts one capture the gateway made (a repeated capture of the same payment is not
    /// counted again).
    pub fn record_capture(&self) {
        self.captured.add(1, &[]);
    }
}

impl Default for PaymentMetrics {
    fn default() -> Self {
        Self::new()
    }
}
