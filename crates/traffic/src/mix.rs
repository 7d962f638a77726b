//! What a shopper does: the kinds of request and how often each scenario sends them.

use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::Scenario;

/// One kind of request the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// `GET /inventory`
    BrowseCatalogue,
    /// `GET /inventory/{sku}`
    ViewProduct,
    /// `POST /orders` with one item.
    SingleItemOrder,
    /// `POST /orders` with two to four items.
    MultiItemOrder,
    /// `GET /orders/{id}` of an order this run created.
    LookupOrder,
    /// `POST /orders` paid with `tok_declined`.
    DeclinedCard,
    /// `POST /orders` paid with `tok_timeout` (the card gateway does not answer).
    GatewayTimeout,
    /// `POST /orders` from a customer the fraud check rejects.
    FlaggedCustomer,
    /// `POST /orders` with no items or a negative quantity.
    InvalidOrder,
    /// `POST /orders` for a sku that does not exist.
    UnknownSku,
}

impl RequestKind {
    pub const ALL: [RequestKind; 10] = [
        RequestKind::BrowseCatalogue,
        RequestKind::ViewProduct,
        RequestKind::SingleItemOrder,
        RequestKind::MultiItemOrder,
        RequestKind::LookupOrder,
        RequestKind::DeclinedCard,
        RequestKind::GatewayTimeout,
        RequestKind::FlaggedCustomer,
        RequestKind::InvalidOrder,
        RequestKind::UnknownSku,
    ];

    /// The name used in the summary, the `x-traffic-kind` header and span names.
    pub fn name(self) -> &'static str {
        match self {
            RequestKind::BrowseCatalogue => "browse_catalogue",
            RequestKind::ViewProduct => "view_product",
            RequestKind::SingleItemOrder => "single_item_order",
            RequestKind::MultiItemOrder => "multi_item_order",
            RequestKind::LookupOrder => "lookup_order",
            RequestKind::DeclinedCard => "declined_card",
            RequestKind::GatewayTimeout => "gateway_timeout",
            RequestKind::FlaggedCustomer => "flagged_customer",
            RequestKind::InvalidOrder => "invalid_order",
            RequestKind::UnknownSku => "unknown_sku",
        }
    }

    /// Whether the request asks order-service to create an order.
    pub fn places_order(self) -> bool {
        !matches!(
            self,
            RequestKind::BrowseCatalogue | RequestKind::ViewProduct | RequestKind::LookupOrder
        )
    }
}

/// How often each kind is sent in `scenario`, in percent.
pub fn weights(scenario: Scenario) -> &'static [(RequestKind, u32)] {
    use RequestKind::*;
    match scenario {
        Scenario::Browse => &[(BrowseCatalogue, 35), (ViewProduct, 65)],
        Scenario::Checkout => &[
            (SingleItemOrder, 45),
            (MultiItemOrder, 35),
            (LookupOrder, 20),
        ],
        Scenario::Mixed => &[
            (BrowseCatalogue, 10),
            (ViewProduct, 25),
            (SingleItemOrder, 22),
            (MultiItemOrder, 15),
            (LookupOrder, 10),
            (DeclinedCard, 5),
            (GatewayTimeout, 3),
            (FlaggedCustomer, 3),
            (InvalidOrder, 4),
            (UnknownSku, 3),
        ],
        Scenario::Failures => &[
            (SingleItemOrder, 10),
            (DeclinedCard, 20),
            (GatewayTimeout, 20),
            (FlaggedCustomer, 15),
            (InvalidOrder, 20),
            (UnknownSku, 15),
        ],
    }
}

/// The percentage of `scenario`'s requests that go to inventory-service (the catalogue and
/// product views) rather than order-service.
pub fn inventory_share(scenario: Scenario) -> u32 {
    let weights = weights(scenario);
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let inventory: u32 = weights
        .iter()
        .filter(|(kind, _)| {
            matches!(
                kind,
                RequestKind::BrowseCatalogue | RequestKind::ViewProduct
            )
        })
        .map(|(_, w)| w)
        .sum();
    inventory * 100 / total
}

/// A request decided by the plan; [`crate::workload`] sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    pub kind: RequestKind,
    /// The sku viewed, for [`RequestKind::ViewProduct`].
    pub sku: Option<String>,
    /// The `POST /orders` body, for kinds that place an order.
    pub order: Option<Value>,
}

/// Card tokens of the lab's simulated card gateway.
pub const CARD_OK: &str = "tok_visa";
pub const CARD_DECLINED: &str = "tok_declined";
pub const CARD_TIMEOUT: &str = "tok_timeout";

/// Picks the next request of `scenario` from `skus` (never empty).
pub fn plan(scenario: Scenario, skus: &[String], rng: &mut impl Rng) -> PlannedRequest {
    let kind = pick_kind(weights(scenario), rng);
    let customer = format!("cust-{:04}", rng.random_range(1..=250));
    // The sku of the kinds that need one.
    let sku = skus[rng.random_range(0..skus.len())].clone();
    let (sku, order) = match kind {
        RequestKind::BrowseCatalogue | RequestKind::LookupOrder => (None, None),
        RequestKind::ViewProduct => (Some(sku), None),
        RequestKind::SingleItemOrder => {
            (None, Some(order(&customer, &[(sku.clone(), 1)], CARD_OK)))
        }
        RequestKind::MultiItemOrder => {
            let lines = rng.random_range(2..=4);
            let items: Vec<(String, i64)> = (0..lines)
                .map(|_| {
                    (
                        skus[rng.random_range(0..skus.len())].clone(),
                        rng.random_range(1..=3),
                    )
                })
                .collect();
            (None, Some(order(&customer, &items, CARD_OK)))
        }
        RequestKind::DeclinedCard => (
            None,
            Some(order(&customer, &[(sku.clone(), 1)], CARD_DECLINED)),
        ),
        RequestKind::GatewayTimeout => (
            None,
            Some(order(&customer, &[(sku.clone(), 1)], CARD_TIMEOUT)),
        ),
        RequestKind::FlaggedCustomer => {
            let customer = format!("fraud-{:03}", rng.random_range(1..=20));
            (None, Some(order(&customer, &[(sku.clone(), 1)], CARD_OK)))
        }
        RequestKind::InvalidOrder => {
            let body = if rng.random_bool(0.5) {
                json!({"customer_id": customer, "items": [], "payment": {"card_token": CARD_OK}})
            } else {
                order(&customer, &[(sku.clone(), -2)], CARD_OK)
            };
            (None, Some(body))
        }
        RequestKind::UnknownSku => {
            let missing = format!("NOPE-{:03}", rng.random_range(100..=999));
            (None, Some(order(&customer, &[(missing, 1)], CARD_OK)))
        }
    };
    PlannedRequest { kind, sku, order }
}

fn order(customer_id: &str, items: &[(String, i64)], card_token: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "items": items
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect::<Vec<_>>(),
        "payment": {"card_token": card_token},
    })
}

fn pick_kind(weights: &[(RequestKind, u32)], rng: &mut impl Rng) -> RequestKind {
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (kind, weight) in weights {
        if roll < *weight {
            return *kind;
        }
        roll -= weight;
    }
    weights[weights.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn skus() -> Vec<String> {
        vec!["KB-001".into(), "MS-002".into()]
    }

    #[test]
    fn the_inventory_share_counts_catalogue_and_product_views() {
        assert_eq!(inventory_share(Scenario::Browse), 100);
        assert_eq!(inventory_share(Scenario::Mixed), 35);
        assert_eq!(inventory_share(Scenario::Checkout), 0);
        assert_eq!(inventory_share(Scenario::Failures), 0);
    }

    #[test]
    fn every_scenario_weighs_to_one_hundred_percent() {
        for scenario in [
            Scenario::Browse,
            Scenario::Checkout,
            Scenario::Mixed,
            Scenario::Failures,
        ] {
            let total: u32 = weights(scenario).iter().map(|(_, w)| w).sum();
            assert_eq!(total, 100, "{scenario:?}");
        }
    }

    #[test]
    fn the_same_seed_plans_the_same_requests() {
        let a: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(7);
            (0..50)
                .map(|_| plan(Scenario::Mixed, &skus(), &mut rng))
                .collect()
        };
        let mut rng = StdRng::seed_from_u64(7);
        let b: Vec<_> = (0..50)
            .map(|_| plan(Scenario::Mixed, &skus(), &mut rng))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn browsing_never_places_orders() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let request = plan(Scenario::Browse, &skus(), &mut rng);
            assert!(!request.kind.places_order());
            assert!(request.order.is_none());
        }
    }

    #[test]
    fn declined_and_timeout_orders_use_the_gateway_tokens() {
        let mut rng = StdRng::seed_from_u64(3);
        let requests: Vec<_> = (0..300)
            .map(|_| plan(Scenario::Failures, &skus(), &mut rng))
            .collect();
        let token = |kind| {
            requests
                .iter()
                .find(|r| r.kind == kind)
                .map(|r| r.order.as_ref().unwrap()["payment"]["card_token"].clone())
        };
        assert_eq!(token(RequestKind::DeclinedCard), Some(json!(CARD_DECLINED)));
        assert_eq!(
            token(RequestKind::GatewayTimeout),
            Some(json!(CARD_TIMEOUT))
        );
    }
}
