//! Request types that validate themselves.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Why a request was refused before touching the database (answered 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("sku {0:?} is not valid: expected 1 to 32 characters of A-Z, 0-9 and '-'")]
    Sku(String),
    #[error("quantity for sku {sku} must be between 1 and {max}, got {quantity}")]
    Quantity {
        sku: String,
        quantity: i64,
        max: u32,
    },
    #[error("order_id must not be empty")]
    OrderId,
    #[error("items must not be empty")]
    NoItems,
}

/// A product code such as `KB-001`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::Sku(raw.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Largest quantity of one sku in one reservation.
pub const MAX_QUANTITY: u32 = 1000;

#[derive(Debug, Deserialize)]
pub struct ReserveLine {
    pub sku: String,
    pub quantity: i64,
}

/// `POST /inventory/reserve` body.
#[derive(Debug, Deserialize)]
pub struct ReserveRequest {
    pub order_id: String,
    pub items: Vec<ReserveLine>,
}

/// `POST /inventory/release` body.
#[derive(Debug, Deserialize)]
pub struct ReleaseRequest {
    pub order_id: String,
}

/// A validated reservation: lines of the same sku are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationOrder {
    pub order_id: String,
    pub lines: BTreeMap<Sku, u32>,
}

impl TryFrom<ReserveRequest> for ReservationOrder {
    type Error = ValidationError;
    fn try_from(request: ReserveRequest) -> Result<Self, Self::Error> {
        let order_id = request.order_id.trim().to_owned();
        if order_id.is_empty() {
            return Err(ValidationError::OrderId);
        }
        if request.items.is_empty() {
            return Err(ValidationError::NoItems);
        }
        let mut lines = BTreeMap::new();
        for line in request.items {
            let sku = Sku::parse(&line.sku)?;
            let invalid = || ValidationError::Quantity {
                sku: line.sku.clone(),
                quantity: line.quantity,
                max: MAX_QUANTITY,
            };
            let quantity = u32::try_from(line.quantity).map_err(|_| invalid())?;
            let total: &mut u32 = lines.entry(sku).or_default();
            *total += quantity;
            if quantity == 0 || *total > MAX_QUANTITY {
                return Err(invalid());
            }
        }
        Ok(Self { order_id, lines })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i64) -> ReserveLine {
        ReserveLine {
            sku: sku.into(),
            quantity,
        }
    }

    #[test]
    fn lines_of_the_same_sku_are_merged() {
        let order = ReservationOrder::try_from(ReserveRequest {
            order_id: "o-1".into(),
            items: vec![line("KB-001", 2), line("KB-001", 3), line("MS-002", 1)],
        })
        .unwrap();
        assert_eq!(order.lines[&Sku::parse("KB-001").unwrap()], 5);
        assert_eq!(order.lines.len(), 2);
    }

    #[test]
    fn zero_or_negative_quantity_is_refused() {
        for quantity in [0, -3] {
            let err = ReservationOrder::try_from(ReserveRequest {
                order_id: "o-1".into(),
                items: vec![line("KB-001", quantity)],
            })
            .unwrap_err();
            assert!(matches!(err, ValidationError::Quantity { .. }), "{err}");
        }
    }

    #[test]
    fn lowercase_or_empty_sku_is_refused() {
        assert!(Sku::parse("kb-001").is_err());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("KB-001").is_ok());
    }
}
