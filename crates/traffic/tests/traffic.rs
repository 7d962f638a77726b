//! The real `traffic` binary against a small shop server that answers like order-service
//! and inventory-service (same paths, bodies and statuses).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

/// What the shop saw of one generated request.
#[derive(Debug, Clone)]
struct Seen {
    kind: String,
    status: u16,
    trace_id: Option<String>,
}

#[derive(Clone, Default)]
struct Shop {
    seen: Arc<Mutex<Vec<Seen>>>,
    orders: Arc<Mutex<HashMap<String, Value>>>,
}

impl Shop {
    fn record(&self, headers: &HeaderMap, status: StatusCode) {
        // Set-up requests (health check, catalogue) carry no kind and are not counted.
        let Some(kind) = headers.get("x-traffic-kind").and_then(|v| v.to_str().ok()) else {
            return;
        };
        let trace_id = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|tp| tp.split('-').nth(1))
            .map(str::to_owned);
        self.seen.lock().unwrap().push(Seen {
            kind: kind.to_owned(),
            status: status.as_u16(),
            trace_id,
        });
    }
}

const SKUS: [&str; 3] = ["KB-001", "MS-002", "MN-003"];

async fn inventory(State(shop): State<Shop>, headers: HeaderMap) -> Response {
    shop.record(&headers, StatusCode::OK);
    Json(
        SKUS.iter()
            .map(|sku| json!({"sku": sku, "name": sku, "price_cents": 1000, "stock": 10}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn product(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Path(sku): Path<String>,
) -> Response {
    if SKUS.contains(&sku.as_str()) {
        shop.record(&headers, StatusCode::OK);
        Json(json!({"sku": sku, "name": sku, "price_cents": 1000, "stock": 10})).into_response()
    } else {
        shop.record(&headers, StatusCode::NOT_FOUND);
        (StatusCode::NOT_FOUND, Json(json!({"error": "unknown sku"}))).into_response()
    }
}

async fn create_order(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Json(order): Json<Value>,
) -> Response {
    let trace_id = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|tp| tp.split('-').nth(1))
        .unwrap_or_default()
        .to_owned();
    let items = order["items"].as_array().cloned().unwrap_or_default();
    let (status, body) = if items.is_empty() {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "items must not be empty", "trace_id": trace_id}),
        )
    } else if items
        .iter()
        .any(|i| i["quantity"].as_i64().unwrap_or(0) < 1)
    {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "quantity must be positive", "trace_id": trace_id}),
        )
    } else if items
        .iter()
        .any(|i| !SKUS.contains(&i["sku"].as_str().unwrap_or("")))
    {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "unknown sku", "trace_id": trace_id}),
        )
    } else if order["customer_id"]
        .as_str()
        .unwrap_or("")
        .starts_with("fraud")
    {
        (
            StatusCode::FORBIDDEN,
            json!({"status": "rejected", "trace_id": trace_id}),
        )
    } else {
        match order["payment"]["card_token"].as_str() {
            Some("tok_declined") => (
                StatusCode::PAYMENT_REQUIRED,
                json!({"status": "payment_declined", "trace_id": trace_id}),
            ),
            Some("tok_timeout") => (
                StatusCode::GATEWAY_TIMEOUT,
                json!({"error": "payment gateway timed out", "trace_id": trace_id}),
            ),
            _ => {
                let id = format!("ord-{}", shop.orders.lock().unwrap().len() + 1);
                let body = json!({"id": id, "status": "confirmed", "total_cents": 1000, "trace_id": trace_id});
                shop.orders.lock().unwrap().insert(id, body.clone());
                (StatusCode::CREATED, body)
            }
        }
    };
    shop.record(&headers, status);
    (status, Json(body)).into_response()
}

async fn get_order(
    State(shop): State<Shop>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let order = shop.orders.lock().unwrap().get(&id).cloned();
    match order {
        Some(order) => {
            shop.record(&headers, StatusCode::OK);
            Json(order).into_response()
        }
        None => {
            shop.record(&headers, StatusCode::NOT_FOUND);
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

/// Starts the shop on a free port; it also swallows the OTLP/HTTP exports of `traffic`.
async fn start_shop() -> (Shop, String) {
    let shop = Shop::default();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/inventory", get(inventory))
        .route("/inventory/{sku}", get(product))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/v1/{signal}", any(|| async { "" }))
        .with_state(shop.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (shop, format!("http://{addr}"))
}

async fn run_traffic(shop_url: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_traffic"))
        .args(["--target", shop_url, "--inventory", shop_url])
        .args(["--explorer", "http://explorer.test"])
        .args(args)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", shop_url)
        .env("OTEL_SDK_DISABLED", "false")
        .env_remove("TRAFFIC_TARGET")
        .env_remove("TRAFFIC_INVENTORY")
        .output()
        .await
        .unwrap()
}

fn summary_of(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "traffic failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints the summary as JSON")
}

#[tokio::test]
async fn sends_exactly_the_requested_count_and_the_summary_matches_what_the_server_saw() {
    let (shop, url) = start_shop().await;
    let output = run_traffic(
        &url,
        &[
            "--requests",
            "60",
            "--rate",
            "200",
            "--concurrency",
            "4",
            "--seed",
            "7",
            "--json",
        ],
    )
    .await;
    let summary = summary_of(&output);
    let seen = shop.seen.lock().unwrap().clone();

    assert_eq!(seen.len(), 60);
    assert_eq!(summary["requests"], 60);
    assert!(!summary["interrupted"].as_bool().unwrap());

    // The summary's per-kind, per-status counts are exactly the server's.
    let mut by_kind: HashMap<(String, String), u64> = HashMap::new();
    for s in &seen {
        *by_kind
            .entry((s.kind.clone(), s.status.to_string()))
            .or_default() += 1;
    }
    let mut summarised = HashMap::new();
    for (kind, k) in summary["by_kind"].as_object().unwrap() {
        for (status, n) in k["statuses"].as_object().unwrap() {
            summarised.insert((kind.clone(), status.clone()), n.as_u64().unwrap());
        }
    }
    assert_eq!(summarised, by_kind);

    // A realistic mix: browsing and ordering, healthy and failing.
    let kinds: std::collections::HashSet<_> = seen.iter().map(|s| s.kind.as_str()).collect();
    for kind in ["view_product", "single_item_order", "multi_item_order"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let errors = seen.iter().filter(|s| s.status >= 500).count() as u64;
    let client_errors = seen
        .iter()
        .filter(|s| (400..500).contains(&s.status))
        .count() as u64;
    assert_eq!(summary["errors"], errors);
    assert_eq!(summary["client_errors"], client_errors);

    // Every request started its own trace, and the links point at traces the server saw.
    let traces: std::collections::HashSet<_> =
        seen.iter().filter_map(|s| s.trace_id.clone()).collect();
    assert_eq!(traces.len(), 60, "each request is its own trace");
    let slowest = summary["slowest"]["trace_id"].as_str().unwrap();
    assert!(traces.contains(slowest));
    assert_eq!(
        summary["slowest"]["url"],
        format!("http://explorer.test/trace/{slowest}")
    );
    let failed = &summary["failed"];
    assert!(failed["status"].as_u64().unwrap() >= 400, "{failed}");
    assert!(traces.contains(failed["trace_id"].as_str().unwrap()));
}

#[tokio::test]
async fn the_failures_scenario_sends_declines_timeouts_invalid_orders_and_unknown_skus() {
    let (shop, url) = start_shop().await;
    let output = run_traffic(
        &url,
        &[
            "--scenario",
            "failures",
            "--requests",
            "80",
            "--rate",
            "400",
            "--seed",
            "3",
            "--json",
        ],
    )
    .await;
    let summary = summary_of(&output);
    let seen = shop.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 80);
    let count = |kind: &str, status: u16| {
        seen.iter()
            .filter(|s| s.kind == kind && s.status == status)
            .count()
    };
    assert!(count("declined_card", 402) > 0);
    assert!(count("gateway_timeout", 504) > 0);
    assert!(count("invalid_order", 400) > 0);
    assert!(count("unknown_sku", 422) > 0);
    assert!(count("flagged_customer", 403) > 0);
    assert!(
        seen.iter()
            .all(|s| !s.kind.starts_with("view") && s.kind != "browse_catalogue")
    );
    assert_eq!(
        summary["statuses"]["504"],
        count("gateway_timeout", 504) as u64
    );
    assert_eq!(summary["failed"]["status"], 504);
}

#[tokio::test]
async fn the_text_summary_shows_percentiles_and_trace_links() {
    let (_shop, url) = start_shop().await;
    let output = run_traffic(&url, &["--requests", "20", "--rate", "200", "--seed", "11"]).await;
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("traffic: 20 requests in"), "{text}");
    assert!(text.contains("latency: p50 "), "{text}");
    assert!(text.contains("slowest request: "), "{text}");
    assert!(text.contains("http://explorer.test/trace/"), "{text}");
}

#[tokio::test]
async fn a_duration_bound_run_stops_by_itself() {
    let (shop, url) = start_shop().await;
    let output = run_traffic(&url, &["--duration", "1s", "--rate", "20", "--json"]).await;
    let summary = summary_of(&output);
    let sent = shop.seen.lock().unwrap().len() as u64;
    assert_eq!(summary["requests"], sent);
    assert!(sent > 0 && sent <= 21, "sent {sent} at 20 req/s for 1s");
}

#[tokio::test]
async fn an_unreachable_target_exits_non_zero_with_a_hint() {
    // Bind then drop a listener: its port is free and refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let output = run_traffic(&dead, &["--requests", "5"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach order-service at {dead}")),
        "{stderr}"
    );
    assert!(stderr.contains("try `make run`"), "{stderr}");
}

/// `traffic` against a working order-service and an inventory-service nobody listens for
/// (the Kind lab before it published 127.0.0.1:8082).
async fn run_without_inventory(args: &[&str]) -> std::process::Output {
    let (_shop, url) = start_shop().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_traffic"))
        .args([
            "--target",
            &url,
            "--inventory",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args(["--explorer", "http://explorer.test", "--json"])
        .args(args)
        .env("OTEL_SDK_DISABLED", "true")
        .env_remove("TRAFFIC_TARGET")
        .env_remove("TRAFFIC_INVENTORY")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn browsing_an_unreachable_inventory_stops_before_sending_and_says_where() {
    let output = run_without_inventory(&["--scenario", "browse", "--requests", "5"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach inventory-service at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--inventory or TRAFFIC_INVENTORY"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_mixed_run_without_inventory_says_which_share_will_fail() {
    let output =
        run_without_inventory(&["--scenario", "mixed", "--requests", "3", "--seed", "1"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("35% of this scenario's requests go to inventory-service"),
        "{stderr}"
    );
}

#[tokio::test]
async fn ctrl_c_stops_early_and_still_prints_the_summary() {
    let (shop, url) = start_shop().await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_traffic"))
        .args(["--target", &url, "--inventory", &url, "--duration", "10m"])
        .args(["--rate", "50", "--json"])
        .env("OTEL_SDK_DISABLED", "true")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while shop.seen.lock().unwrap().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "traffic sent nothing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    let summary = summary_of(&output);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["requests"], shop.seen.lock().unwrap().len() as u64);
}
