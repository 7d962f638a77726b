//! The fraud rules: a deterministic score from an order's amount, item count and customer.
//!
//! The rules, so a learner can predict (and provoke) each decision:
//! - a base score of 0.05, plus up to 0.04 from a stable hash of the customer id (the same
//!   customer always gets the same nudge);
//! - the amount adds `0.6 × amount / $5,000`, capped at 0.6; over $1,000 the reason
//!   `high_amount` is given;
//! - more than 10 items adds 0.2 (`many_items`);
//! - customers whose id starts with `fraud` score 0.99 (`customer_flagged`);
//! - amounts over $10,000 (1,000,000 cents) are rejected outright (`amount_over_limit`);
//! - a score of [`REJECT_THRESHOLD`] or more is rejected;
//! - the fault scenario `fraud_reject_all` rejects every order (`fault_injection`).

use serde::{Deserialize, Serialize};

/// Scores at or above this are rejected.
pub const REJECT_THRESHOLD: f64 = 0.7;
/// Amounts above this many cents are rejected whatever the score.
pub const AMOUNT_LIMIT_CENTS: i64 = 1_000_000;
const HIGH_AMOUNT_CENTS: i64 = 100_000;
const MANY_ITEMS: i64 = 10;

/// What order-service asks about an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FraudCheckRequest {
    pub order_id: String,
    pub customer_id: String,
    pub amount_cents: i64,
    pub item_count: i64,
}

/// Why a request cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("order_id must not be empty")]
    EmptyOrderId,
    #[error("customer_id must not be empty")]
    EmptyCustomerId,
    #[error("amount_cents must not be negative (got {0})")]
    NegativeAmount(i64),
    #[error("item_count must be at least 1 (got {0})")]
    NoItems(i64),
}

impl FraudCheckRequest {
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        if self.order_id.trim().is_empty() {
            return Err(InvalidRequest::EmptyOrderId);
        }
        if self.customer_id.trim().is_empty() {
            return Err(InvalidRequest::EmptyCustomerId);
        }
        if self.amount_cents < 0 {
            return Err(InvalidRequest::NegativeAmount(self.amount_cents));
        }
        if self.item_count < 1 {
            return Err(InvalidRequest::NoItems(self.item_count));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FraudDecision {
    Approve,
    Reject,
}

impl FraudDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            FraudDecision::Approve => "approve",
            FraudDecision::Reject => "reject",
        }
    }
}

/// The function's answer: `{"decision": ..., "score": 0..1, "reasons": [...]}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct FraudAssessment {
    pub decision: FraudDecision,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// The fault scenario (of the shared [`telemetry::faults`] set) that makes this function
/// reject every order.
pub const REJECT_ALL_SCENARIO: &str = "fraud_reject_all";

/// Scores a valid request; `reject_all` is the [`REJECT_ALL_SCENARIO`] fault.
pub fn assess(request: &FraudCheckRequest, reject_all: bool) -> FraudAssessment {
    let mut reasons = Vec::new();
    let mut score = 0.05 + customer_nudge(&request.customer_id);

    let amount_share = (request.amount_cents as f64 / 500_000.0).min(1.0);
    score += 0.6 * amount_share;
    if request.amount_cents > HIGH_AMOUNT_CENTS {
        reasons.push("high_amount".to_owned());
    }
    if request.item_count > MANY_ITEMS {
        score += 0.2;
        reasons.push("many_items".to_owned());
    }
    if request
        .customer_id
        .to_ascii_lowercase()
        .starts_with("fraud")
    {
        score = 0.99;
        reasons.push("customer_flagged".to_owned());
    }
    let score = (score.clamp(0.0, 1.0) * 1000.0).round() / 1000.0;

    let mut reject = score >= REJECT_THRESHOLD;
    if request.amount_cents > AMOUNT_LIMIT_CENTS {
        reject = true;
        reasons.push("amount_over_limit".to_owned());
    }
    if reject_all {
        reject = true;
        reasons.push("fault_injection".to_owned());
    }
    FraudAssessment {
        decision: if reject {
            FraudDecision::Reject
        } else {
            FraudDecision::Approve
        },
        score,
        reasons,
    }
}

/// 0.00..=0.04 from an FNV-1a hash of the customer id: stable across runs and processes.
fn customer_nudge(customer_id: &str) -> f64 {
    let hash = customer_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % 5) as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(customer: &str, amount_cents: i64, item_count: i64) -> FraudCheckRequest {
        FraudCheckRequest {
            order_id: "ord-1".into(),
            customer_id: customer.into(),
            amount_cents,
            item_count,
        }
    }

    #[test]
    fn an_ordinary_order_is_approved_with_a_low_score() {
        let result = assess(&order("cust-42", 4_999, 2), false);
        assert_eq!(result.decision, FraudDecision::Approve);
        assert!(result.score < 0.2, "score {}", result.score);
        assert!(result.reasons.is_empty());
    }

    #[test]
    fn flagged_customers_are_rejected() {
        let result = assess(&order("fraudster-1", 1_000, 1), false);
        assert_eq!(result.decision, FraudDecision::Reject);
        assert_eq!(result.reasons, ["customer_flagged"]);
    }

    #[test]
    fn amounts_over_the_limit_are_rejected() {
        let result = assess(&order("cust-1", AMOUNT_LIMIT_CENTS + 1, 1), false);
        assert_eq!(result.decision, FraudDecision::Reject);
        assert!(result.reasons.contains(&"amount_over_limit".to_owned()));
    }

    #[test]
    fn large_baskets_of_expensive_items_cross_the_threshold() {
        let result = assess(&order("cust-1", 600_000, 12), false);
        assert_eq!(result.decision, FraudDecision::Reject);
        assert!(result.score >= REJECT_THRESHOLD);
    }

    #[test]
    fn the_same_order_always_gets_the_same_score() {
        let a = assess(&order("cust-7", 12_345, 3), false);
        let b = assess(&order("cust-7", 12_345, 3), false);
        assert_eq!(a, b);
    }

    #[test]
    fn reject_all_fault_rejects_ordinary_orders() {
        let result = assess(&order("cust-42", 100, 1), true);
        assert_eq!(result.decision, FraudDecision::Reject);
        assert_eq!(result.reasons, ["fault_injection"]);
    }

    #[test]
    fn invalid_requests_say_what_is_wrong() {
        assert_eq!(
            order("c", -1, 1).validate(),
            Err(InvalidRequest::NegativeAmount(-1))
        );
        assert_eq!(order("c", 1, 0).validate(), Err(InvalidRequest::NoItems(0)));
        assert_eq!(
            order("", 1, 1).validate(),
            Err(InvalidRequest::EmptyCustomerId)
        );
    }
}
