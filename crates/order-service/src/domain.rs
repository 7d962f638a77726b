//! Orders: the request as a customer sends it, validated, and the stored order.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("customer_id must be 1 to 64 characters of letters, digits, '-' or '_'")]
    CustomerId,
    #[error("items must hold 1 to {max} lines")]
    ItemCount { max: usize },
    #[error("item {index}: sku must not be empty")]
    Sku { index: usize },
    #[error("item {index}: quantity must be between 1 and {max}, got {quantity}")]
    Quantity {
        index: usize,
        quantity: i64,
        max: i64,
    },
    #[error("payment.card_token must not be empty")]
    CardToken,
}

/// Most lines in one order.
pub const MAX_LINES: usize = 50;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 100;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Deserialize)]
pub struct PaymentDetails {
    pub card_token: String,
}

/// `POST /orders` body.
#[derive(Debug, Deserialize)]
pub struct CreateOrderRequest {
    pub customer_id: String,
    pub items: Vec<OrderLine>,
    pub payment: PaymentDetails,
}

/// A customer's loyalty tier. Derived from the customer id (a stand-in for a CRM lookup):
/// a stable hash puts about 20 % of customers in gold, 30 % in silver, the rest in bronze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerTier {
    Gold,
    Silver,
    Bronze,
}

impl CustomerTier {
    pub fn of(customer_id: &str) -> Self {
        // FNV-1a: stable across processes and releases, unlike the std hasher.
        let hash = customer_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        match hash % 10 {
            0 | 1 => Self::Gold,
            2..=4 => Self::Silver,
            _ => Self::Bronze,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gold => "gold",
            Self::Silver => "silver",
            Self::Bronze => "bronze",
        }
    }
}

/// A validated order request.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub customer_id: String,
    pub tier: CustomerTier,
    pub items: Vec<OrderLine>,
    pub card_token: String,
}

impl NewOrder {
    pub fn item_count(&self) -> i64 {
        self.items.iter().map(|l| l.quantity).sum()
    }
}

impl TryFrom<CreateOrderRequest> for NewOrder {
    type Error = ValidationError;
    fn try_from(request: CreateOrderRequest) -> Result<Self, Self::Error> {
        let customer_id = request.customer_id.trim().to_owned();
        let valid_customer = !customer_id.is_empty()
            && customer_id.len() <= 64
            && customer_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_customer {
            return Err(ValidationError::CustomerId);
        }
        if request.items.is_empty() || request.items.len() > MAX_LINES {
            return Err(ValidationError::ItemCount { max: MAX_LINES });
        }
        for (index, line) in request.items.iter().enumerate() {
            if line.sku.trim().is_empty() {
                return Err(ValidationError::Sku { index });
            }
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(ValidationError::Quantity {
                    index,
                    quantity: line.quantity,
                    max: MAX_QUANTITY,
                });
            }
        }
        let card_token = request.payment.card_token.trim().to_owned();
        if card_token.is_empty() {
            return Err(ValidationError::CardToken);
        }
        Ok(Self {
            tier: CustomerTier::of(&customer_id),
            customer_id,
            items: request.items,
            card_token,
        })
    }
}

/// Where an order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Stock reserved, fraud check passed, payment authorised.
    Created,
    /// The fraud check rejected it; stock released.
    Rejected,
    /// Payment declined or failed; stock released.
    PaymentFailed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Rejected => "rejected",
            Self::PaymentFailed => "payment_failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "created" => Some(Self::Created),
            "rejected" => Some(Self::Rejected),
            "payment_failed" => Some(Self::PaymentFailed),
            _ => None,
        }
    }
}

/// A stored order, as `POST /orders` and `GET /orders/{id}` return it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: String,
    pub status: String,
    pub customer_id: String,
    pub customer_tier: String,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub currency: String,
    /// The trace that processed the order (null when tracing is off).
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Why the order was not created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
    /// The status code `POST /orders` answered, repeated for an idempotent replay.
    #[serde(skip)]
    pub http_status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(customer: &str, quantity: i64, token: &str) -> CreateOrderRequest {
        CreateOrderRequest {
            customer_id: customer.into(),
            items: vec![OrderLine {
                sku: "KB-001".into(),
                quantity,
            }],
            payment: PaymentDetails {
                card_token: token.into(),
            },
        }
    }

    #[test]
    fn tier_is_stable_for_a_customer_and_all_tiers_occur() {
        assert_eq!(CustomerTier::of("cust-42"), CustomerTier::of("cust-42"));
        let tiers: Vec<_> = (0..100)
            .map(|i| CustomerTier::of(&format!("cust-{i}")))
            .collect();
        for tier in [
            CustomerTier::Gold,
            CustomerTier::Silver,
            CustomerTier::Bronze,
        ] {
            assert!(tiers.contains(&tier), "{tier:?} never occurs");
        }
    }

    #[test]
    fn invalid_orders_are_refused_with_the_reason() {
        assert_eq!(
            NewOrder::try_from(request("", 1, "tok_visa")).unwrap_err(),
            ValidationError::CustomerId
        );
        assert!(matches!(
            NewOrder::try_from(request("c-1", 0, "tok_visa")).unwrap_err(),
            ValidationError::Quantity { index: 0, .. }
        ));
        assert_eq!(
            NewOrder::try_from(request("c-1", 1, " ")).unwrap_err(),
            ValidationError::CardToken
        );
    }
}
