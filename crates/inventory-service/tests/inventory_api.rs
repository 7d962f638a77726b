//! inventory-service as a real process: real sockets, a real SQLite file in a temp dir, a
//! real OTLP receiver.

use std::collections::HashSet;
use std::time::Duration;

use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use serde_json::{Value, json};
use telemetry::testing::{OtlpReceiver, ReceivedSpan, ServiceProcess, attr};

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

    async fn set_scenarios(&self, scenarios: &[&str]) {
        let (status, body) = self
            .post("/admin/faults", json!({ "scenarios": scenarios }))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Two reservations sent at the same moment, each answered 200.
    async fn reserve_two_at_once(&self, first: &str, second: &str) {
        let reserve = |order: &str| {
            self.post(
                "/inventory/reserve",
                json!({"order_id": order, "items": [{"sku": "DM-011", "quantity": 1}]}),
            )
        };
        let ((a, body_a), (b, body_b)) = tokio::join!(reserve(first), reserve(second));
        assert_eq!((a, b), (200, 200), "{body_a} {body_b}");
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
async fn a_line_below_the_reorder_point_brings_a_delivery_of_the_opening_stock() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    // 20 chairs to start with; the reorder point is a quarter of that.
    let chairs = inventory.stock("CH-014").await;
    assert_eq!(chairs, 20);
    let (status, body) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-five", "items": [{"sku": "CH-014", "quantity": 15}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        inventory.stock("CH-014").await,
        5,
        "at the reorder point: no delivery"
    );
    let (status, body) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-one", "items": [{"sku": "CH-014", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        inventory.stock("CH-014").await,
        4 + 20,
        "below it: 20 delivered"
    );
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
async fn commit_is_final_idempotent_and_needs_a_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), None);
    let (status, body) = inventory
        .post("/inventory/commit", json!({"order_id": "o-none"}))
        .await;
    assert_eq!(status, 409, "nothing reserved: {body}");
    let before = inventory.stock("KB-001").await;
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-ship", "items": [{"sku": "KB-001", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, first) = inventory
        .post("/inventory/commit", json!({"order_id": "o-ship"}))
        .await;
    assert_eq!(
        (status, first["already_committed"].as_bool()),
        (200, Some(false))
    );
    let (status, again) = inventory
        .post("/inventory/commit", json!({"order_id": "o-ship"}))
        .await;
    assert_eq!(
        (status, again["already_committed"].as_bool()),
        (200, Some(true))
    );
    let (status, released) = inventory
        .post("/inventory/release", json!({"order_id": "o-ship"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        released["released"],
        json!([]),
        "shipped stock is not given back"
    );
    assert_eq!(inventory.stock("KB-001").await, before - 2);
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

fn is_error(span: &ReceivedSpan) -> bool {
    span.span.status.clone().unwrap_or_default().code == OtlpStatus::Error as i32
}

fn millis(span: &ReceivedSpan) -> u64 {
    (span.span.end_time_unix_nano - span.span.start_time_unix_nano) / 1_000_000
}

/// Whether `outer` began before `inner` and ended after it (same process, same clock).
fn contains(outer: &ReceivedSpan, inner: &ReceivedSpan) -> bool {
    outer.span.start_time_unix_nano <= inner.span.start_time_unix_nano
        && inner.span.end_time_unix_nano <= outer.span.end_time_unix_nano
}

/// The `inventory.reserve_stock` span of `order`, and the database statement spans of its
/// trace.
fn reservation<'a>(
    spans: &'a [ReceivedSpan],
    order: &str,
) -> (&'a ReceivedSpan, Vec<&'a ReceivedSpan>) {
    let business = spans
        .iter()
        .find(|s| {
            s.span.name == "inventory.reserve_stock" && s.attr("order.id").as_deref() == Some(order)
        })
        .unwrap_or_else(|| panic!("no inventory.reserve_stock span for {order}"));
    let statements = spans
        .iter()
        .filter(|s| s.trace_id() == business.trace_id() && s.attr("db.system.name").is_some())
        .filter(|s| s.span.kind == SpanKind::Client as i32)
        .collect();
    (business, statements)
}

#[tokio::test(flavor = "multi_thread")]
async fn statements_are_measured_in_seconds_by_operation_and_table_only() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    let (status, _) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-measured", "items": [{"sku": "KB-001", "quantity": 1}]}),
        )
        .await;
    assert_eq!(status, 200);
    let has_update = |r: &OtlpReceiver| {
        r.metrics().iter().any(|m| {
            m.metric.name == "db.client.operation.duration"
                && matches!(&m.metric.data, Some(Data::Histogram(h)) if h.data_points.iter().any(|p| {
                    attr(&p.attributes, "db.operation.name").as_deref() == Some("UPDATE")
                }))
        })
    };
    let seen = receiver
        .wait_until(Duration::from_secs(10), has_update)
        .await;
    assert!(inventory.process.stop().unwrap().success());
    assert!(
        seen,
        "db.client.operation.duration with an UPDATE point was not exported"
    );

    let mut series = HashSet::new();
    for metric in receiver
        .metrics()
        .iter()
        .filter(|m| m.metric.name == "db.client.operation.duration")
    {
        assert_eq!(metric.metric.unit, "s");
        let Some(Data::Histogram(histogram)) = &metric.metric.data else {
            panic!("db.client.operation.duration is not a histogram")
        };
        for point in &histogram.data_points {
            assert_eq!(
                point.explicit_bounds,
                [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0],
                "the semantic conventions' advised boundaries"
            );
            let mut keys: Vec<_> = point.attributes.iter().map(|kv| kv.key.as_str()).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["db.collection.name", "db.operation.name", "db.system.name"],
                "no query text, no ids, no error.type on success"
            );
            assert_eq!(
                attr(&point.attributes, "db.system.name").as_deref(),
                Some("sqlite")
            );
            // An embedded database answers well under a second.
            assert!(point.count > 0 && point.sum.unwrap() < point.count as f64);
            series.insert((
                attr(&point.attributes, "db.operation.name").unwrap(),
                attr(&point.attributes, "db.collection.name").unwrap(),
            ));
        }
    }
    for (operation, table) in [
        ("SELECT", "products"),
        ("SELECT", "reservations"),
        ("UPDATE", "products"),
        ("INSERT", "reservations"),
    ] {
        assert!(
            series.contains(&(operation.to_owned(), table.to_owned())),
            "no {operation} {table} series in {series:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_statement_is_an_error_span_and_an_error_type_point() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("inventory.db");
    let inventory = start(&db, Some(&receiver));
    // Another writer holds SQLite's write lock: the service's UPDATE waits out its busy
    // timeout (rusqlite's default, 5 s) and fails with SQLITE_BUSY.
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = inventory
        .post(
            "/inventory/reserve",
            json!({"order_id": "o-busy", "items": [{"sku": "KB-001", "quantity": 1}]}),
        )
        .await;
    writer.execute_batch("ROLLBACK").unwrap();
    assert_eq!(status, 500, "{body}");
    let busy_point = |r: &OtlpReceiver| {
        r.metrics().iter().any(|m| {
            m.metric.name == "db.client.operation.duration"
                && matches!(&m.metric.data, Some(Data::Histogram(h)) if h.data_points.iter().any(|p| {
                    attr(&p.attributes, "error.type").as_deref() == Some("SQLITE_BUSY")
                        && attr(&p.attributes, "db.operation.name").as_deref() == Some("UPDATE")
                        && attr(&p.attributes, "db.collection.name").as_deref() == Some("products")
                }))
        })
    };
    let seen = receiver
        .wait_until(Duration::from_secs(10), busy_point)
        .await;
    assert!(inventory.process.stop().unwrap().success());
    assert!(
        seen,
        "no db.client.operation.duration point with error.type SQLITE_BUSY"
    );

    let spans = receiver.spans();
    let (_, statements) = reservation(&spans, "o-busy");
    let update = statements
        .iter()
        .find(|s| s.span.name == "UPDATE products")
        .expect("UPDATE products span exported");
    assert!(is_error(update), "the failed statement's span is an error");
    assert_eq!(update.attr("error.type").as_deref(), Some("SQLITE_BUSY"));
    assert!(update.span.events.iter().any(|e| e.name == "exception"));
    for ok in statements
        .iter()
        .filter(|s| s.span.name != "UPDATE products")
    {
        assert!(!is_error(ok), "{} did not fail", ok.span.name);
        assert_eq!(ok.attr("error.type"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_finds_the_connection_taken_shows_the_wait_in_its_trace() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    // Each statement takes 150-400 ms: the first reservation holds the one connection for
    // four statements while the second waits for it.
    inventory.set_scenarios(&["slow_inventory_queries"]).await;
    inventory.reserve_two_at_once("o-first", "o-second").await;
    assert!(inventory.process.stop().unwrap().success());

    let spans = receiver.spans();
    let requests = [
        reservation(&spans, "o-first"),
        reservation(&spans, "o-second"),
    ];
    let waits: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == "wait for connection")
        .collect();
    assert_eq!(
        waits.len(),
        1,
        "one request waited, the other found the connection free"
    );
    let wait = waits[0];
    let (waiter, holder) = if wait.parent_span_id() == requests[0].0.span_id() {
        (&requests[0], &requests[1])
    } else {
        (&requests[1], &requests[0])
    };
    assert_eq!(
        wait.parent_span_id(),
        waiter.0.span_id(),
        "under the business span"
    );
    assert_eq!(wait.attr("db.system.name").as_deref(), Some("sqlite"));
    assert!(millis(wait) >= 100, "waited only {} ms", millis(wait));
    assert!(
        holder.1.iter().any(|statement| contains(wait, statement)),
        "the other request's statements ran while this one waited"
    );
    assert!(
        waiter
            .1
            .iter()
            .all(|s| s.span.start_time_unix_nano >= wait.span.end_time_unix_nano),
        "the waiting request's statements start after its wait"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_lock_scenario_makes_concurrent_requests_wait_for_each_other() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    inventory
        .set_scenarios(&["inventory_lock", "slow_inventory_queries"])
        .await;
    inventory
        .reserve_two_at_once("o-locked-1", "o-locked-2")
        .await;
    assert!(inventory.process.stop().unwrap().success());

    let spans = receiver.spans();
    let requests = [
        reservation(&spans, "o-locked-1"),
        reservation(&spans, "o-locked-2"),
    ];
    let wait_of = |business: &ReceivedSpan| {
        spans
            .iter()
            .find(|s| {
                s.span.name == "inventory.wait_for_lock" && s.parent_span_id() == business.span_id()
            })
            .unwrap_or_else(|| panic!("no lock wait under {}", business.span_id()))
    };
    let mut waits = [
        (wait_of(requests[0].0), &requests[1]),
        (wait_of(requests[1].0), &requests[0]),
    ];
    waits.sort_by_key(|(wait, _)| millis(wait));
    let [(first_wait, _), (second_wait, holder)] = waits;
    assert!(
        millis(first_wait) < 100,
        "the first request found the lock free ({} ms)",
        millis(first_wait)
    );
    assert!(
        millis(second_wait) >= 100,
        "the second request waited only {} ms",
        millis(second_wait)
    );
    assert!(
        holder
            .1
            .iter()
            .any(|statement| contains(second_wait, statement)),
        "the first request's statements ran while the second waited for the lock"
    );
}

/// Five lines, each a different sku: what the planted problems of a reservation multiply.
fn five_lines(order: &str) -> Value {
    json!({"order_id": order, "items": [
        {"sku": "KB-001", "quantity": 1},
        {"sku": "MS-002", "quantity": 2},
        {"sku": "CB-007", "quantity": 3},
        {"sku": "DM-011", "quantity": 1},
        {"sku": "HB-017", "quantity": 1},
    ]})
}

/// The names of the `fault.injected` events on `span`.
fn injected(span: &ReceivedSpan) -> Vec<String> {
    span.span
        .events
        .iter()
        .filter(|e| e.name == "fault.injected")
        .filter_map(|e| attr(&e.attributes, "fault.name"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn n_plus_one_queries_reads_each_product_alone_and_the_fix_reads_them_in_one_select() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    let (status, fixed) = inventory
        .post("/inventory/reserve", five_lines("o-one-select"))
        .await;
    assert_eq!(status, 200, "{fixed}");
    inventory.set_scenarios(&["n_plus_one_queries"]).await;
    let (status, planted) = inventory
        .post("/inventory/reserve", five_lines("o-n-plus-one"))
        .await;
    assert_eq!(status, 200, "{planted}");
    assert_eq!(
        fixed["total_cents"], planted["total_cents"],
        "same prices either way"
    );
    assert!(inventory.process.stop().unwrap().success());

    let spans = receiver.spans();
    let product_selects = |order: &str| {
        let (business, statements) = reservation(&spans, order);
        let selects = statements
            .iter()
            .filter(|s| s.span.name == "SELECT products")
            .count();
        (selects, injected(business))
    };
    assert_eq!(product_selects("o-one-select"), (1, vec![]));
    assert_eq!(
        product_selects("o-n-plus-one"),
        (5, vec!["n_plus_one_queries".to_owned()]),
        "one SELECT per line, and the business span names the planted problem"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn span_per_item_sends_a_span_per_line_and_the_fix_prices_in_one_span() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = start(&dir.path().join("inventory.db"), Some(&receiver));
    let (status, body) = inventory
        .post("/inventory/reserve", five_lines("o-one-span"))
        .await;
    assert_eq!(status, 200, "{body}");
    inventory.set_scenarios(&["span_per_item"]).await;
    let (status, body) = inventory
        .post("/inventory/reserve", five_lines("o-span-each"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(inventory.process.stop().unwrap().success());

    let spans = receiver.spans();
    let pricing = |order: &str| {
        let (business, _) = reservation(&spans, order);
        let of_trace: Vec<_> = spans
            .iter()
            .filter(|s| s.trace_id() == business.trace_id())
            .filter(|s| s.span.name.starts_with("inventory.price_"))
            .collect();
        let marked = of_trace
            .iter()
            .filter(|s| injected(s) == ["span_per_item"])
            .count();
        (of_trace.len(), marked)
    };
    let (fixed, fixed_marked) = pricing("o-one-span");
    let (planted, planted_marked) = pricing("o-span-each");
    assert_eq!((fixed, fixed_marked), (1, 0), "one pricing span, unmarked");
    assert_eq!(
        (planted, planted_marked),
        (5, 5),
        "a span per line, each naming the planted problem"
    );
    let total = |order: &str| {
        let (business, _) = reservation(&spans, order);
        spans
            .iter()
            .filter(|s| s.trace_id() == business.trace_id())
            .count()
    };
    assert_eq!(
        total("o-span-each"),
        total("o-one-span") + 4,
        "the trace grows by a span per extra line"
    );
}
