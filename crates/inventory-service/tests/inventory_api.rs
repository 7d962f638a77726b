//! inventory-service as a real process: real sockets, a real SQLite file in a temp dir, a
//! real OTLP receiver.

use std::time::Duration;

use serde_json::{Value, json};
use telemetry::testing::{OtlpReceiver, ServiceProcess, attr};

struct Inventory {
    process: ServiceProcess,
    client: reqwest::Client,
}

fn start(db: &std::path::Path, receiver: Option<&OtlpReceiver>) -> Inventory {
    let mut envs = vec![
        ("DATABASE_URL", db.display().to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".to_owned()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "cloud.platform=aws_ec2,host.id=i-0abc123".to_owned(),
        ),
    ];
    match receiver {
        Some(r) => envs.push(("OTEL_EXPORTER_OTLP_ENDPOINT", r.endpoint())),
        None => envs.push(("OTEL_SDK_DISABLED", "true".to_owned())),
    }
    let process =
        ServiceProcess::spawn(env!("CARGO_BIN_EXE_inventory-service").as_ref(), &envs).unwrap();
    Inventory {
        process,
        client: reqwest::Client::new(),
    }
}

impl Inventory {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.process.url()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.process.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn stock(&self, sku: &str) -> i64 {
        let (status, product) = self.get(&format!("/inventory/{sku}")).await;
        assert_eq!(status, 200, "{product}");
        product["stock"].as_i64().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn catalogue_is_seeded_and_unknown_sku_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let (status, products) = inventory.get("/inventory").await;
    assert_eq!(status, 200);
    assert!(products.as_array().unwrap().len() >= 20);
    let (status, body) = inventory.get("/inventory/NOPE-404").await;
    assert_eq!(status, 404);
    assert_eq!(body["sku"], "NOPE-404");
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_stock_is_409_naming_the_sku_and_reserves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let keyboards = inventory.stock("KB-001").await;
    let chairs = inventory.stock("CH-014").await;
    let (status, body) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-short", "items": [
                {"sku": "KB-001", "quantity": 2},
                {"sku": "CH-014", "quantity": chairs + 1},
            ]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["sku"], "CH-014");
    assert!(body["error"].as_str().unwrap().contains("CH-014"));
    assert_eq!(inventory.stock("KB-001").await, keyboards, "all or nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn release_gives_stock_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let before = inventory.stock("MS-002").await;
    let (status, reservation) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-1", "items": [{"sku": "MS-002", "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 200, "{reservation}");
    assert_eq!(reservation["total_cents"], 3 * 4599);
    assert_eq!(inventory.stock("MS-002").await, before - 3);
    // A retried reserve for the same order does not take stock twice.
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-1", "items": [{"sku": "MS-002", "quantity": 3}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(inventory.stock("MS-002").await, before - 3);

    for _ in 0..2 {
        let (status, _) = inventory
            .post("/inventory/release", json!({"order_id": "o-1"}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(inventory.stock("MS-002").await, before);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_reservation_is_400_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let (status, body) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-1", "items": [{"sku": "KB-001", "quantity": 0}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("quantity"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.db");
    let inventory = start(&db, None);
    let before = inventory.stock("SD-008").await;
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-r", "items": [{"sku": "SD-008", "quantity": 4}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(inventory.process.stop().unwrap().success());

    let restarted = start(&db, None);
    assert_eq!(restarted.stock("SD-008").await, before - 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn error_rate_fault_answers_503_except_health_and_admin() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let (status, body) = inventory
        .post("/admin/faults", json!({"error_rate": 1.0}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error_rate"], 1.0);
    let (status, body) = inventory.get("/inventory").await;
    assert_eq!(status, 503);
    assert_eq!(body["fault"], "error_rate");
    let health = reqwest::get(format!("{}/healthz", inventory.process.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, body) = inventory
        .post("/admin/faults", json!({"scenarios": ["no_such_thing"]}))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("no_such_thing"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reserve_is_traced_with_database_spans_without_values() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-traced", "items": [{"sku": "LP-015", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, 200);
    let gauge_seen = receiver
        .wait_until(Duration::from_secs(10), |r| {
            r.metrics()
                .iter()
                .any(|m| m.metric.name == "inventory.stock_level")
        })
        .await;
    assert!(gauge_seen, "inventory.stock_level was not exported");
    assert!(inventory.process.stop().unwrap().success());

    let spans = receiver.spans();
    let business = spans
        .iter()
        .find(|s| s.span.name == "inventory.reserve_stock")
        .expect("business span exported");
    assert_eq!(business.attr("order.id").as_deref(), Some("o-traced"));
    assert_eq!(
        attr(&business.resource.attributes, "cloud.platform").as_deref(),
        Some("aws_ec2")
    );
    let update = spans
        .iter()
        .find(|s| s.span.name == "UPDATE products")
        .expect("UPDATE products span exported");
    assert_eq!(update.trace_id(), business.trace_id());
    assert_eq!(update.attr("db.system.name").as_deref(), Some("sqlite"));
    assert_eq!(update.attr("db.operation.name").as_deref(), Some("UPDATE"));
    assert_eq!(
        update.attr("db.collection.name").as_deref(),
        Some("products")
    );
    let query = update.attr("db.query.text").unwrap();
    assert!(query.contains("?1"), "{query}");
    assert!(!query.contains("LP-015"), "values leaked into {query}");
    let server = spans
        .iter()
        .find(|s| s.span.name == "POST /inventory/reserve")
        .unwrap();
    assert_eq!(business.parent_span_id(), server.span_id());
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_lock_scenario_makes_requests_wait_for_the_lock() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    let (status, _) = inventory
        .post(
            "/admin/faults",
            json!({"scenarios": ["inventory_lock", "slow_inventory_queries"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-locked", "items": [{"sku": "DM-011", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(inventory.process.stop().unwrap().success());
    let spans = receiver.spans();
    let business = spans
        .iter()
        .find(|s| s.span.name == "inventory.reserve_stock")
        .unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s.span.name == "inventory.wait_for_lock"
                && s.parent_span_id() == business.span_id()),
        "no lock wait under the business span"
    );
}
