//! The payment request, validated.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("order_id must not be empty")]
    OrderId,
    #[error("amount_cents must be positive, got {0}")]
    Amount(i64),
    #[error("currency {0:?} is not an ISO 4217 code such as \"USD\"")]
    Currency(String),
    #[error(
        "card_token {0:?} is not a card token: expected \"tok_\" followed by letters, digits or '_'"
    )]
    CardToken(String),
    #[error(
        "payment id {0:?} is not one this service issues: expected \"pay_\" followed by 32 lower-case hex digits"
    )]
    PaymentId(String),
}

/// `POST /payments` body.
#[derive(Debug, Deserialize)]
pub struct PaymentRequest {
    pub order_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub card_token: String,
}

/// What the simulated gateway will do with a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBehaviour {
    Approve,
    Decline,
    Timeout,
}

/// A validated payment.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub order_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub card: CardBehaviour,
}

impl TryFrom<PaymentRequest> for Payment {
    type Error = ValidationError;
    fn try_from(request: PaymentRequest) -> Result<Self, Self::Error> {
        let order_id = request.order_id.trim().to_owned();
        if order_id.is_empty() {
            return Err(ValidationError::OrderId);
        }
        if request.amount_cents <= 0 {
            return Err(ValidationError::Amount(request.amount_cents));
        }
        let currency = request.currency.trim().to_owned();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ValidationError::Currency(request.currency));
        }
        let card = match request.card_token.strip_prefix("tok_") {
            Some(rest)
                if !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                match rest {
                    "declined" => CardBehaviour::Decline,
                    "timeout" => CardBehaviour::Timeout,
                    _ => CardBehaviour::Approve,
                }
            }
            _ => return Err(ValidationError::CardToken(request.card_token)),
        };
        Ok(Self {
            order_id,
            amount_cents: request.amount_cents,
            currency,
            card,
        })
    }
}

/// The answer to `POST /payments` (201 authorized, 402 declined, 504 timeout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PaymentResult {
    pub payment_id: String,
    pub order_id: String,
    /// authorized | declined | timeout
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A payment id as `POST /payments` issues it: `pay_` and a UUID's 32 lower-case hex digits.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentId(String);

impl PaymentId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.strip_prefix("pay_") {
            Some(hex)
                if hex.len() == 32
                    && hex
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(ValidationError::PaymentId(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The answer to `POST /payments/{id}/void` (200 voided, 504 timeout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VoidResult {
    pub payment_id: String,
    /// voided | timeout
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: &str, amount: i64, currency: &str) -> PaymentRequest {
        PaymentRequest {
            order_id: "o-1".into(),
            amount_cents: amount,
            currency: currency.into(),
            card_token: token.into(),
        }
    }

    #[test]
    fn tokens_choose_the_gateway_behaviour() {
        let card = |t| Payment::try_from(request(t, 100, "USD")).unwrap().card;
        assert_eq!(card("tok_visa"), CardBehaviour::Approve);
        assert_eq!(card("tok_declined"), CardBehaviour::Decline);
        assert_eq!(card("tok_timeout"), CardBehaviour::Timeout);
    }

    #[test]
    fn invalid_amount_currency_and_token_are_refused() {
        assert_eq!(
            Payment::try_from(request("tok_visa", 0, "USD")).unwrap_err(),
            ValidationError::Amount(0)
        );
        assert!(matches!(
            Payment::try_from(request("tok_visa", 10, "usd")).unwrap_err(),
            ValidationError::Currency(_)
        ));
        assert!(matches!(
            Payment::try_from(request("4111111111111111", 10, "USD")).unwrap_err(),
            ValidationError::CardToken(_)
        ));
    }

    #[test]
    fn payment_ids_are_checked_against_the_issued_shape() {
        let issued = format!("pay_{}", uuid::Uuid::new_v4().simple());
        assert_eq!(PaymentId::parse(&issued).unwrap().as_str(), issued);
        for bad in [
            "",
            "pay_",
            "pay_123",
            "ord_0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                PaymentId::parse(bad).unwrap_err(),
                ValidationError::PaymentId(bad.to_owned())
            );
        }
        assert!(PaymentId::parse("pay_0123456789ABCDEF0123456789abcdef").is_err());
    }
}
