//! The checkout across real processes: order-, inventory- and payment-service binaries with
//! SQLite files in a temp dir, all exporting to one real OTLP receiver. The fraud-check
//! Lambda belongs to another crate; a tiny axum handler answering its JSON stands in for
//! its function URL.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use serde_json::{Value, json};
use telemetry::testing::{OtlpReceiver, ReceivedSpan, ServiceProcess, workspace_binary};

/// Rejects customers whose id starts with "fraudster", approves everyone else.
async fn fraud_stub() -> String {
    async fn score(Json(body): Json<Value>) -> Json<Value> {
        let customer = body["customer_id"].as_str().unwrap_or_default();
        if customer.starts_with("fraudster") {
            Json(json!({"decision": "reject", "score": 0.97}))
        } else {
            Json(json!({"decision": "approve", "score": 0.08}))
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", post(score));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Lab {
    receiver: OtlpReceiver,
    dir: tempfile::TempDir,
    inventory: ServiceProcess,
    payment: ServiceProcess,
    order: Option<ServiceProcess>,
    fraud_url: String,
    /// Where order-service finds inventory, when not inventory-service itself.
    inventory_url: Option<String>,
    client: reqwest::Client,
}

fn telemetry_env(receiver: &OtlpReceiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300".to_owned()),
    ]
}

impl Lab {
    async fn start() -> Self {
        Self::start_with_fraud_url(None).await
    }

    async fn start_with_fraud_url(fraud_url: Option<String>) -> Self {
        let receiver = OtlpReceiver::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fraud_url = match fraud_url {
            Some(url) => url,
            None => fraud_stub().await,
        };
        let mut inventory_env = telemetry_env(&receiver);
        inventory_env.push((
            "DATABASE_URL",
            dir.path().join("inventory.db").display().to_string(),
        ));
        let inventory = ServiceProcess::spawn(
            &workspace_binary("inventory-service").unwrap(),
            &inventory_env,
        )
        .unwrap();
        let mut payment_env = telemetry_env(&receiver);
        payment_env.push(("PAYMENT_GATEWAY_TIMEOUT_MS", "300".to_owned()));
        let payment =
            ServiceProcess::spawn(&workspace_binary("payment-service").unwrap(), &payment_env)
                .unwrap();
        let mut lab = Self {
            receiver,
            dir,
            inventory,
            payment,
            order: None,
            fraud_url,
            inventory_url: None,
            client: reqwest::Client::new(),
        };
        lab.start_order();
        lab
    }

    fn start_order(&mut self) {
        let mut env = telemetry_env(&self.receiver);
        env.extend([
            (
                "DATABASE_URL",
                self.dir.path().join("orders.db").display().to_string(),
            ),
            (
                "INVENTORY_URL",
                self.inventory_url.clone().unwrap_or(self.inventory.url()),
            ),
            ("PAYMENT_URL", self.payment.url()),
            ("FRAUD_CHECK_URL", self.fraud_url.clone()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "k8s.namespace.name=otel-lab,k8s.pod.name=order-service-0".to_owned(),
            ),
        ]);
        self.order = Some(
            ServiceProcess::spawn(env!("CARGO_BIN_EXE_order-service").as_ref(), &env).unwrap(),
        );
    }

    fn order(&self) -> &ServiceProcess {
        self.order.as_ref().expect("order-service is running")
    }

    async fn place(&self, customer: &str, sku: &str, quantity: i64, token: &str) -> (u16, Value) {
        self.place_with(customer, sku, quantity, token, &[]).await
    }

    async fn place_with(
        &self,
        customer: &str,
        sku: &str,
        quantity: i64,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/orders", self.order().url()))
            .json(&json!({
                "customer_id": customer,
                "items": [{"sku": sku, "quantity": quantity}],
                "payment": {"card_token": token},
            }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn stock(&self, sku: &str) -> i64 {
        let product: Value = self
            .client
            .get(format!("{}/inventory/{sku}", self.inventory.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        product["stock"].as_i64().unwrap()
    }

    async fn get_order(&self, id: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/orders/{id}", self.order().url()))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Stops order-service with SIGTERM, which flushes its telemetry.
    fn stop_order(&mut self) {
        if let Some(order) = self.order.take() {
            assert!(order.stop().unwrap().success());
        }
    }
}

/// Forwards to inventory-service, but answers the first release with 503, as an inventory
/// that is restarting would.
async fn flaky_release_proxy(inventory: String) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let first_release = Arc::new(AtomicBool::new(true));
    let client = reqwest::Client::new();
    let forward = move |request: Request| {
        let (first_release, client, inventory) =
            (first_release.clone(), client.clone(), inventory.clone());
        async move {
            let path = request.uri().path().to_owned();
            if path == "/inventory/release" && first_release.swap(false, Ordering::SeqCst) {
                return axum::http::Response::builder()
                    .status(503)
                    .body(Body::from("inventory is restarting"))
                    .unwrap();
            }
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 1 << 20).await.unwrap();
            let answer = client
                .request(parts.method, format!("{inventory}{path}"))
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            axum::http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn is_error(span: &ReceivedSpan) -> bool {
    span.span.status.clone().unwrap_or_default().code == OtlpStatus::Error as i32
}

fn spans_of_trace(receiver: &OtlpReceiver, trace_id: &str) -> Vec<ReceivedSpan> {
    receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id() == trace_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn checkout_is_one_trace_across_services_continuing_the_callers_traceparent() {
    let mut lab = Lab::start().await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let (status, order) = lab
        .place_with(
            "cust-trace",
            "KB-001",
            1,
            "tok_visa",
            &[("traceparent", traceparent.as_str())],
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "created");
    assert_eq!(order["total_cents"], 8999);
    assert_eq!(
        order["trace_id"], caller_trace,
        "the caller's trace is continued"
    );
    let tier = order["customer_tier"].as_str().unwrap().to_owned();

    // Payment and inventory export on their own schedule; wait for their spans.
    let all_arrived = lab
        .receiver
        .wait_until(Duration::from_secs(10), |r| {
            let names: HashSet<_> = spans_of_trace(r, caller_trace)
                .into_iter()
                .map(|s| s.span.name)
                .collect();
            [
                "POST /inventory/reserve",
                "payment.authorize",
                "UPDATE products",
            ]
            .iter()
            .all(|n| names.contains(*n))
        })
        .await;
    lab.stop_order();
    assert!(all_arrived, "downstream spans did not arrive");

    let spans = spans_of_trace(&lab.receiver, caller_trace);
    let services: HashSet<_> = spans.iter().map(|s| s.service_name()).collect();
    for service in ["order-service", "inventory-service", "payment-service"] {
        assert!(
            services.contains(service),
            "no span from {service}: {services:?}"
        );
    }
    // Nothing of the checkout landed in another trace (inventory's start-up read of its
    // stock levels is a trace of its own).
    let elsewhere: Vec<_> = lab
        .receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id() != caller_trace)
        .map(|s| s.span.name)
        .collect();
    assert!(
        elsewhere
            .iter()
            .all(|name| ["inventory.load_stock_levels", "SELECT products"].contains(&name.as_str())),
        "the checkout started a second trace: {elsewhere:?}"
    );

    // Every span's parent is exported, except the root whose parent is the caller's span.
    let ids: HashSet<_> = spans.iter().map(|s| s.span_id()).collect();
    for span in &spans {
        let parent = span.parent_span_id();
        assert!(
            ids.contains(&parent) || parent == caller_span,
            "parent of {} ({}) is missing",
            span.span.name,
            span.service_name()
        );
    }
    let root = spans
        .iter()
        .find(|s| s.parent_span_id() == caller_span)
        .unwrap();
    assert_eq!(root.span.name, "POST /orders");
    assert_eq!(root.span.kind, SpanKind::Server as i32);

    // inventory's server span hangs under order-service's CLIENT span.
    let inventory_server = spans
        .iter()
        .find(|s| s.span.name == "POST /inventory/reserve")
        .unwrap();
    assert_eq!(inventory_server.service_name(), "inventory-service");
    let parent = spans
        .iter()
        .find(|s| s.span_id() == inventory_server.parent_span_id())
        .unwrap();
    assert_eq!(parent.service_name(), "order-service");
    assert_eq!(parent.span.kind, SpanKind::Client as i32);
    assert_eq!(parent.span.name, "POST");

    // Baggage: payment sees the tier order-service derived.
    let payment_server = spans
        .iter()
        .find(|s| s.span.name == "POST /payments")
        .unwrap();
    assert_eq!(payment_server.attr("customer.tier"), Some(tier.clone()));
    let authorize = spans
        .iter()
        .find(|s| s.span.name == "payment.authorize")
        .unwrap();
    assert_eq!(authorize.attr("customer.tier"), Some(tier.clone()));
    let process = spans
        .iter()
        .find(|s| s.span.name == "order_service.process_order")
        .unwrap();
    assert_eq!(
        process.attr("order.id"),
        order["id"].as_str().map(str::to_owned)
    );
    assert_eq!(process.attr("order.total").as_deref(), Some("8999"));
    assert!(
        spans
            .iter()
            .any(|s| s.span.name == "order_service.validate")
    );
    assert!(spans.iter().any(|s| s.span.name == "order_service.persist"));
    assert!(
        spans.iter().any(|s| s.span.name == "INSERT orders"
            && s.attr("db.system.name").as_deref() == Some("sqlite"))
    );

    // Logs carry the trace and span ids of the span they were written in.
    let logs = lab.receiver.logs();
    let processed = logs
        .iter()
        .find(|l| l.service_name() == "order-service" && l.body() == "order processed")
        .expect("order-service's log arrived");
    assert_eq!(processed.trace_id(), caller_trace);
    assert_eq!(processed.span_id(), process.span_id());
    let authorized = logs
        .iter()
        .find(|l| l.body() == "payment authorized")
        .expect("payment-service's log arrived");
    assert_eq!(authorized.trace_id(), caller_trace);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_metrics_are_seconds_by_route_without_ids() {
    let mut lab = Lab::start().await;
    let (status, _) = lab.place("cust-metrics", "MS-002", 1, "tok_visa").await;
    assert_eq!(status, 201);
    let seen = lab
        .receiver
        .wait_until(Duration::from_secs(10), |r| {
            let metrics = r.metrics();
            let has = |service: &str, name: &str| {
                metrics
                    .iter()
                    .any(|m| m.service_name() == service && m.metric.name == name)
            };
            has("order-service", "http.server.request.duration")
                && has("order-service", "orders.created")
                && has("inventory-service", "http.server.request.duration")
                && has("payment-service", "payments.authorized")
        })
        .await;
    lab.stop_order();
    assert!(seen, "metrics did not arrive");

    let metrics = lab.receiver.metrics();
    let mut routes = HashSet::new();
    for metric in metrics
        .iter()
        .filter(|m| m.metric.name == "http.server.request.duration")
    {
        assert_eq!(metric.metric.unit, "s");
        let Some(Data::Histogram(histogram)) = &metric.metric.data else {
            panic!("http.server.request.duration is not a histogram")
        };
        for point in &histogram.data_points {
            if let Some(route) = telemetry::testing::attr(&point.attributes, "http.route") {
                routes.insert((metric.service_name(), route));
            }
        }
    }
    assert!(routes.contains(&("order-service".to_owned(), "/orders".to_owned())));
    assert!(routes.contains(&(
        "inventory-service".to_owned(),
        "/inventory/reserve".to_owned()
    )));

    // No metric anywhere is labelled with an id.
    for metric in &metrics {
        let keys: Vec<String> = match &metric.metric.data {
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .flat_map(|p| p.attributes.iter().map(|kv| kv.key.clone()))
                .collect(),
            Some(Data::Sum(s)) => s
                .data_points
                .iter()
                .flat_map(|p| p.attributes.iter().map(|kv| kv.key.clone()))
                .collect(),
            Some(Data::Gauge(g)) => g
                .data_points
                .iter()
                .flat_map(|p| p.attributes.iter().map(|kv| kv.key.clone()))
                .collect(),
            _ => Vec::new(),
        };
        for key in keys {
            assert!(
                !key.ends_with(".id") && !key.ends_with("_id") && key != "url.full",
                "{} carries the high-cardinality attribute {key}",
                metric.metric.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_failure_releases_reserved_stock() {
    let mut lab = Lab::start().await;
    let before = lab.stock("HD-004").await;
    let (status, order) = lab
        .place("cust-declined", "HD-004", 2, "tok_declined")
        .await;
    assert_eq!(status, 402, "{order}");
    assert_eq!(order["status"], "payment_failed");
    assert_eq!(lab.stock("HD-004").await, before, "stock is back");
    let (status, stored) = lab.get_order(order["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(stored["status"], "payment_failed");

    // A declined card is the client's problem: order's server span is not an error.
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    lab.stop_order();
    let spans = spans_of_trace(&lab.receiver, &trace_id);
    let server = spans
        .iter()
        .find(|s| s.span.name == "POST /orders")
        .unwrap();
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("402")
    );
    assert!(!is_error(server));
    assert!(spans.iter().any(|s| {
        s.span.name == "POST"
            && s.attr("url.full")
                .is_some_and(|u| u.ends_with("/inventory/release"))
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_timeout_is_a_server_error_and_releases_stock() {
    let mut lab = Lab::start().await;
    let before = lab.stock("WC-005").await;
    let (status, order) = lab.place("cust-timeout", "WC-005", 1, "tok_timeout").await;
    assert_eq!(status, 502, "{order}");
    assert_eq!(order["status"], "payment_failed");
    assert_eq!(lab.stock("WC-005").await, before);
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    lab.stop_order();
    let spans = spans_of_trace(&lab.receiver, &trace_id);
    let server = spans
        .iter()
        .find(|s| s.span.name == "POST /orders")
        .unwrap();
    assert!(is_error(server), "5xx marks the server span as an error");
    let process = spans
        .iter()
        .find(|s| s.span.name == "order_service.process_order")
        .unwrap();
    assert!(is_error(process));
    assert!(process.span.events.iter().any(|e| e.name == "exception"));
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_stock_is_409_and_nothing_is_reserved() {
    let lab = Lab::start().await;
    let before = lab.stock("TB-020").await;
    let (status, body) = lab
        .place("cust-greedy", "TB-020", before + 1, "tok_visa")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["sku"], "TB-020");
    assert_eq!(lab.stock("TB-020").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_returns_the_same_order() {
    let lab = Lab::start().await;
    let before = lab.stock("PB-016").await;
    let key = [("Idempotency-Key", "checkout-7f3a")];
    let (first_status, first) = lab
        .place_with("cust-retry", "PB-016", 2, "tok_visa", &key)
        .await;
    assert_eq!(first_status, 201, "{first}");
    let (second_status, second) = lab
        .place_with("cust-retry", "PB-016", 2, "tok_visa", &key)
        .await;
    assert_eq!(second_status, 201);
    assert_eq!(second, first, "the stored order, unchanged");
    assert_eq!(lab.stock("PB-016").await, before - 2, "stock taken once");
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_survive_a_restart() {
    let mut lab = Lab::start().await;
    let (status, order) = lab.place("cust-durable", "CB-007", 3, "tok_visa").await;
    assert_eq!(status, 201);
    lab.stop_order();
    lab.start_order();
    let (status, stored) = lab.get_order(order["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(stored, order);
    let (status, _) = lab.get_order("ord_does_not_exist").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn fraud_rejection_releases_stock_and_stores_a_rejected_order() {
    let lab = Lab::start().await;
    let before = lab.stock("GP-019").await;
    let (status, order) = lab.place("fraudster-1", "GP-019", 1, "tok_visa").await;
    assert_eq!(status, 403, "{order}");
    assert_eq!(order["status"], "rejected");
    assert_eq!(lab.stock("GP-019").await, before);
    let (_, stored) = lab.get_order(order["id"].as_str().unwrap()).await;
    assert_eq!(stored["status"], "rejected");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_fraud_check_fails_open() {
    // A port nothing listens on: bind, note the port, close.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let mut lab = Lab::start_with_fraud_url(Some(closed)).await;
    let (status, order) = lab.place("cust-open", "LS-010", 1, "tok_visa").await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "created");
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    lab.stop_order();
    let spans = spans_of_trace(&lab.receiver, &trace_id);
    let process = spans
        .iter()
        .find(|s| s.span.name == "order_service.process_order")
        .unwrap();
    assert!(
        process
            .span
            .events
            .iter()
            .any(|e| e.name == "fraud_check.unavailable")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_order_is_400_with_a_clear_message() {
    let lab = Lab::start().await;
    let (status, body) = lab.place("cust-zero", "KB-001", 0, "tok_visa").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("quantity"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_release_is_tried_again_until_the_stock_is_back() {
    let mut lab = Lab::start().await;
    lab.inventory_url = Some(flaky_release_proxy(lab.inventory.url()).await);
    lab.stop_order();
    lab.start_order();
    let before = lab.stock("HD-004").await;

    let (status, order) = lab
        .place("cust-declined", "HD-004", 2, "tok_declined")
        .await;

    assert_eq!(status, 402, "{order}");
    assert_eq!(lab.stock("HD-004").await, before, "stock is back");
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    lab.stop_order();
    let mut releases: Vec<_> = spans_of_trace(&lab.receiver, &trace_id)
        .into_iter()
        .filter(|s| {
            s.span.name == "POST"
                && s.attr("url.full")
                    .is_some_and(|u| u.ends_with("/inventory/release"))
        })
        .collect();
    releases.sort_by_key(|s| s.span.start_time_unix_nano);
    let statuses: Vec<_> = releases
        .iter()
        .map(|s| s.attr("http.response.status_code"))
        .collect();
    assert_eq!(
        statuses,
        [Some("503".to_owned()), Some("200".to_owned())],
        "one failed try, then the release"
    );
}
