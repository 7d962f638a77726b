//! The checkout across real processes: order-, inventory- and payment-service binaries with
//! SQLite files in a temp dir, all exporting to one real OTLP receiver. The fraud-check
//! Lambda belongs to another crate; a tiny axum handler answering its JSON stands in for
//! its function URL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use order_service::domain::CustomerTier;
use serde_json::{Value, json};
use telemetry::testing::{
    OtlpReceiver, ReceivedSpan, ServiceProcess, any_value_string, workspace_binary,
};

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
    /// Where order-service finds payment, when not payment-service itself.
    payment_url: Option<String>,
    /// order-service's environment beyond the lab's wiring.
    order_env: Vec<(&'static str, String)>,
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
        Self::start_with(None, Vec::new()).await
    }

    async fn start_with_fraud_url(fraud_url: Option<String>) -> Self {
        Self::start_with(fraud_url, Vec::new()).await
    }

    async fn start_with(fraud_url: Option<String>, order_env: Vec<(&'static str, String)>) -> Self {
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
        payment_env.push((
            "DATABASE_URL",
            dir.path().join("payments.db").display().to_string(),
        ));
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
            payment_url: None,
            order_env,
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
            (
                "PAYMENT_URL",
                self.payment_url.clone().unwrap_or(self.payment.url()),
            ),
            ("FRAUD_CHECK_URL", self.fraud_url.clone()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "k8s.namespace.name=otel-lab,k8s.pod.name=order-service-0".to_owned(),
            ),
        ]);
        env.extend(self.order_env.iter().cloned());
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

    /// The outbox relay's `send orders` span, once it has arrived.
    async fn send_span(&self) -> ReceivedSpan {
        let arrived = |r: &OtlpReceiver| r.spans().iter().any(|s| s.span.name == "send orders");
        assert!(
            self.receiver
                .wait_until(Duration::from_secs(10), arrived)
                .await,
            "no send span"
        );
        self.receiver
            .spans()
            .into_iter()
            .find(|s| s.span.name == "send orders")
            .expect("arrived")
    }

    /// Stops order-service with SIGTERM, which flushes its telemetry.
    fn stop_order(&mut self) {
        if let Some(order) = self.order.take() {
            assert!(order.stop().unwrap().success());
        }
    }
}

/// Forwards to `upstream`, but answers the first request whose path ends with `failing`
/// with 503, as a service that is restarting would.
async fn proxy_failing_first(upstream: String, failing: &'static str) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let first = Arc::new(AtomicBool::new(true));
    let client = reqwest::Client::new();
    let forward = move |request: Request| {
        let (first, client, upstream) = (first.clone(), client.clone(), upstream.clone());
        async move {
            let path = request.uri().path().to_owned();
            if path.ends_with(failing) && first.swap(false, Ordering::SeqCst) {
                return axum::http::Response::builder()
                    .status(503)
                    .body(Body::from("the service is restarting"))
                    .unwrap();
            }
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 1 << 20).await.unwrap();
            let answer = client
                .request(parts.method, format!("{upstream}{path}"))
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

/// A metric series: its attributes, as strings.
type Series = BTreeMap<String, String>;

fn series(pairs: &[(&str, &str)]) -> Series {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn series_of(attributes: &[KeyValue]) -> Series {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(any_value_string).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Every series of the counter `name` from order-service with its latest value: the
/// temporality is cumulative, so the last export holds the total.
fn order_counter(receiver: &OtlpReceiver, name: &str) -> HashMap<Series, i64> {
    let mut latest = HashMap::new();
    for metric in receiver
        .metrics()
        .into_iter()
        .filter(|m| m.service_name() == "order-service" && m.metric.name == name)
    {
        let Some(Data::Sum(sum)) = &metric.metric.data else {
            panic!("{name} is not a counter")
        };
        for point in &sum.data_points {
            let value = match point.value {
                Some(number_data_point::Value::AsInt(i)) => i,
                other => panic!("{name} counts in integers, got {other:?}"),
            };
            latest.insert(series_of(&point.attributes), value);
        }
    }
    latest
}

/// What `orders.created` says after one checkout by `customer` that ended as `status`.
fn counted_once(status: &str, customer: &str) -> HashMap<Series, i64> {
    let tier = CustomerTier::of(customer).as_str();
    HashMap::from([(
        series(&[("order.status", status), ("customer.tier", tier)]),
        1,
    )])
}

/// The series of the histogram `name` from `service` that have points.
fn histogram_series(receiver: &OtlpReceiver, service: &str, name: &str) -> HashSet<Series> {
    let mut found = HashSet::new();
    for metric in receiver
        .metrics()
        .into_iter()
        .filter(|m| m.service_name() == service && m.metric.name == name)
    {
        let Some(Data::Histogram(histogram)) = &metric.metric.data else {
            panic!("{name} is not a histogram")
        };
        for point in histogram.data_points.iter().filter(|p| p.count > 0) {
            found.insert(series_of(&point.attributes));
        }
    }
    found
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.span.name == name)
        .unwrap_or_else(|| panic!("no {name} span"))
}

/// The client spans of a trace that called `path` (on any service).
fn calls_to<'a>(spans: &'a [ReceivedSpan], path: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Client as i32)
        .filter(|s| s.attr("url.full").is_some_and(|u| u.ends_with(path)))
        .collect()
}

/// The spans of the one `POST /orders` answered `status` (for answers without a trace id).
fn trace_answered(receiver: &OtlpReceiver, status: u16) -> Vec<ReceivedSpan> {
    let servers: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| {
            s.span.name == "POST /orders"
                && s.attr("http.response.status_code") == Some(status.to_string())
        })
        .collect();
    assert_eq!(servers.len(), 1, "one POST /orders answered {status}");
    spans_of_trace(receiver, &servers[0].trace_id())
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
                && has("inventory-service", "db.client.operation.duration")
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

    // Both stores measure their statements, by operation and table only.
    let orders_db = histogram_series(
        &lab.receiver,
        "order-service",
        "db.client.operation.duration",
    );
    assert!(
        orders_db.contains(&series(&[
            ("db.system.name", "sqlite"),
            ("db.operation.name", "INSERT"),
            ("db.collection.name", "orders"),
        ])),
        "{orders_db:?}"
    );
    let inventory_db = histogram_series(
        &lab.receiver,
        "inventory-service",
        "db.client.operation.duration",
    );
    assert!(
        inventory_db.contains(&series(&[
            ("db.system.name", "sqlite"),
            ("db.operation.name", "UPDATE"),
            ("db.collection.name", "products"),
        ])),
        "{inventory_db:?}"
    );

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
    let server = find(&spans, "POST /orders");
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("402")
    );
    assert!(!is_error(server));
    let process = find(&spans, "order_service.process_order");
    assert_eq!(
        process.attr("order.status").as_deref(),
        Some("payment_failed")
    );
    assert!(
        !is_error(process),
        "a declined card is not order-service's failure"
    );
    // The compensation is in the trace, after the payment call.
    let pay = calls_to(&spans, "/payments");
    let release = calls_to(&spans, "/inventory/release");
    assert_eq!((pay.len(), release.len()), (1, 1));
    assert!(release[0].span.start_time_unix_nano >= pay[0].span.end_time_unix_nano);
    assert_eq!(
        release[0].attr("http.response.status_code").as_deref(),
        Some("200")
    );

    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("payment_failed", "cust-declined")
    );
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
    // payment-service exports on its own schedule: wait for its side of the timeout.
    let payment_seen = lab
        .receiver
        .wait_until(Duration::from_secs(10), |r| {
            spans_of_trace(r, &trace_id)
                .iter()
                .any(|s| s.span.name == "payment.gateway_call")
        })
        .await;
    lab.stop_order();
    assert!(
        payment_seen,
        "payment-service's gateway span did not arrive"
    );
    let spans = spans_of_trace(&lab.receiver, &trace_id);
    let server = find(&spans, "POST /orders");
    assert!(is_error(server), "5xx marks the server span as an error");
    let process = find(&spans, "order_service.process_order");
    assert!(is_error(process));
    assert!(process.span.events.iter().any(|e| e.name == "exception"));
    assert_eq!(
        process.attr("order.status").as_deref(),
        Some("payment_failed")
    );
    // The call that failed is the payment call, answered 504 by payment-service, whose
    // gateway span says why.
    let pay = calls_to(&spans, "/payments");
    assert_eq!(pay.len(), 1);
    assert_eq!(
        pay[0].attr("http.response.status_code").as_deref(),
        Some("504")
    );
    let gateway = find(&spans, "payment.gateway_call");
    assert!(is_error(gateway));
    assert_eq!(
        gateway.attr("payment.gateway.decision").as_deref(),
        Some("timeout")
    );
    assert_eq!(
        calls_to(&spans, "/inventory/release").len(),
        1,
        "stock released"
    );

    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("payment_failed", "cust-timeout")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_stock_is_409_and_nothing_is_reserved() {
    let mut lab = Lab::start().await;
    let before = lab.stock("TB-020").await;
    let (status, body) = lab
        .place("cust-greedy", "TB-020", before + 1, "tok_visa")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["sku"], "TB-020");
    assert_eq!(lab.stock("TB-020").await, before);
    lab.stop_order();

    // The customer's mistake, not a failure; the checkout stops at inventory.
    let spans = trace_answered(&lab.receiver, 409);
    assert!(!is_error(find(&spans, "POST /orders")));
    let process = find(&spans, "order_service.process_order");
    assert!(!is_error(process));
    assert_eq!(
        process.attr("order.status").as_deref(),
        Some("out_of_stock")
    );
    assert_eq!(calls_to(&spans, "/inventory/reserve").len(), 1);
    assert!(calls_to(&spans, "/payments").is_empty(), "no payment tried");
    assert!(
        !spans.iter().any(|s| s.span.name == "INSERT orders"),
        "no order stored"
    );
    // Counted all the same: orders.created sees every way a checkout ends.
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("out_of_stock", "cust-greedy")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_inventory_is_502_and_counted_as_failed() {
    let mut lab = Lab::start().await;
    lab.inventory_url = Some({
        // A port nothing listens on: bind, note the port, close.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    });
    lab.stop_order();
    lab.start_order();
    let (status, body) = lab.place("cust-stranded", "KB-001", 1, "tok_visa").await;
    assert_eq!(status, 502, "{body}");
    lab.stop_order();

    let spans = trace_answered(&lab.receiver, 502);
    assert!(
        is_error(find(&spans, "POST /orders")),
        "a failed dependency is a 5xx"
    );
    let process = find(&spans, "order_service.process_order");
    assert!(is_error(process));
    assert_eq!(process.attr("order.status").as_deref(), Some("failed"));
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("failed", "cust-stranded")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_insert_is_a_500_counted_as_failed_with_an_error_database_span() {
    let mut lab = Lab::start().await;
    // Another writer holds SQLite's write lock on the orders database: the INSERT waits out
    // its busy timeout (rusqlite's default, 5 s) and fails with SQLITE_BUSY.
    let writer = rusqlite::Connection::open(lab.dir.path().join("orders.db")).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = lab.place("cust-busy", "MS-002", 1, "tok_visa").await;
    writer.execute_batch("ROLLBACK").unwrap();
    assert_eq!(status, 500, "{body}");
    lab.stop_order();

    let spans = trace_answered(&lab.receiver, 500);
    let insert = find(&spans, "INSERT orders");
    assert!(is_error(insert));
    assert_eq!(insert.attr("error.type").as_deref(), Some("SQLITE_BUSY"));
    assert!(insert.span.events.iter().any(|e| e.name == "exception"));
    let persist = find(&spans, "order_service.persist");
    assert_eq!(insert.parent_span_id(), persist.span_id());
    assert_eq!(
        find(&spans, "order_service.process_order")
            .attr("order.status")
            .as_deref(),
        Some("failed")
    );
    assert!(
        histogram_series(
            &lab.receiver,
            "order-service",
            "db.client.operation.duration"
        )
        .contains(&series(&[
            ("db.system.name", "sqlite"),
            ("db.operation.name", "INSERT"),
            ("db.collection.name", "orders"),
            ("error.type", "SQLITE_BUSY"),
        ]))
    );
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("failed", "cust-busy")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_returns_the_same_order() {
    let mut lab = Lab::start().await;
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
    lab.stop_order();

    // The retry's trace shows the lookup that found the order, and no work redone.
    let servers: Vec<_> = lab
        .receiver
        .spans()
        .into_iter()
        .filter(|s| s.span.name == "POST /orders")
        .collect();
    assert_eq!(servers.len(), 2);
    let retry = servers
        .iter()
        .find(|s| s.trace_id() != first["trace_id"].as_str().unwrap())
        .expect("the retry is a trace of its own");
    let spans = spans_of_trace(&lab.receiver, &retry.trace_id());
    let lookup = find(&spans, "SELECT orders");
    assert_eq!(lookup.parent_span_id(), retry.span_id());
    assert!(
        spans
            .iter()
            .all(|s| s.span.kind != SpanKind::Client as i32 || s.attr("db.system.name").is_some()),
        "the retry called no other service"
    );
    assert!(
        !spans
            .iter()
            .any(|s| s.span.name == "order_service.process_order")
    );
    // One order, counted once.
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("created", "cust-retry")
    );
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
    lab.stop_order();

    // Each read is one SELECT under its server span; an unknown id is the client's mistake.
    let reads: Vec<_> = lab
        .receiver
        .spans()
        .into_iter()
        .filter(|s| s.span.name == "GET /orders/{id}")
        .collect();
    assert_eq!(reads.len(), 2);
    for read in &reads {
        let spans = spans_of_trace(&lab.receiver, &read.trace_id());
        let select = find(&spans, "SELECT orders");
        assert_eq!(select.parent_span_id(), read.span_id());
        assert_eq!(select.attr("db.system.name").as_deref(), Some("sqlite"));
        assert!(!is_error(select) && !is_error(read));
    }
    assert!(
        reads
            .iter()
            .any(|r| r.attr("http.response.status_code").as_deref() == Some("404"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fraud_rejection_voids_the_authorised_payment_releases_stock_and_stores_a_rejected_order() {
    let mut lab = Lab::start().await;
    let before = lab.stock("GP-019").await;
    let (status, order) = lab.place("fraudster-1", "GP-019", 1, "tok_visa").await;
    assert_eq!(status, 403, "{order}");
    assert_eq!(order["status"], "rejected");
    assert_eq!(lab.stock("GP-019").await, before);
    let (_, stored) = lab.get_order(order["id"].as_str().unwrap()).await;
    assert_eq!(stored["status"], "rejected");
    let payment_id = stored["payment_id"]
        .as_str()
        .expect("the voided authorisation is kept on the order")
        .to_owned();
    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    // payment-service exports on its own schedule: wait for its side of the void.
    let void_seen = lab
        .receiver
        .wait_until(Duration::from_secs(10), |r| {
            spans_of_trace(r, &trace_id)
                .iter()
                .any(|s| s.span.name == "payment.void")
        })
        .await;
    lab.stop_order();
    assert!(void_seen, "payment-service's void span did not arrive");

    let spans = spans_of_trace(&lab.receiver, &trace_id);
    let server = find(&spans, "POST /orders");
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("403")
    );
    assert!(!is_error(server), "a fraud rejection is not a server error");
    let process = find(&spans, "order_service.process_order");
    assert_eq!(process.attr("order.status").as_deref(), Some("rejected"));
    assert!(!is_error(process));
    // The payment ran alongside the fraud check and was authorised; the hold is lifted
    // once the verdict is in.
    let pay = calls_to(&spans, "/payments");
    assert_eq!(pay.len(), 1);
    assert_eq!(
        pay[0].attr("http.response.status_code").as_deref(),
        Some("201")
    );
    let void = calls_to(&spans, &format!("/payments/{payment_id}/void"));
    assert_eq!(void.len(), 1, "one void, of the authorised payment");
    assert_eq!(void[0].parent_span_id(), process.span_id());
    assert!(void[0].span.start_time_unix_nano >= pay[0].span.end_time_unix_nano);
    assert_eq!(
        void[0].attr("http.response.status_code").as_deref(),
        Some("200")
    );
    let voided = find(&spans, "payment.void");
    assert_eq!(voided.attr("payment.id"), Some(payment_id));
    assert_eq!(voided.attr("payment.outcome").as_deref(), Some("voided"));
    let void_server = spans
        .iter()
        .find(|s| s.span_id() == voided.parent_span_id())
        .unwrap();
    assert_eq!(void_server.parent_span_id(), void[0].span_id());
    assert_eq!(
        calls_to(&spans, "/inventory/release").len(),
        1,
        "stock released"
    );
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        counted_once("rejected", "fraudster-1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fraud_rejection_of_a_declined_payment_voids_nothing() {
    let mut lab = Lab::start().await;
    let (status, order) = lab.place("fraudster-2", "GP-019", 1, "tok_declined").await;
    assert_eq!(status, 403, "the fraud rejection wins: {order}");
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["payment_id"], Value::Null, "no authorisation to keep");
    lab.stop_order();

    let spans = spans_of_trace(&lab.receiver, order["trace_id"].as_str().unwrap());
    let pay = calls_to(&spans, "/payments");
    assert_eq!(pay.len(), 1);
    assert_eq!(
        pay[0].attr("http.response.status_code").as_deref(),
        Some("402")
    );
    assert!(
        calls_to(&spans, "/void").is_empty(),
        "nothing held, nothing voided"
    );
    assert!(!is_error(find(&spans, "order_service.process_order")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_void_is_an_error_on_the_checkout_and_the_order_is_still_rejected() {
    let mut lab = Lab::start().await;
    lab.payment_url = Some(proxy_failing_first(lab.payment.url(), "/void").await);
    lab.stop_order();
    lab.start_order();

    let (status, order) = lab.place("fraudster-3", "GP-019", 1, "tok_visa").await;
    assert_eq!(status, 403, "{order}");
    assert_eq!(order["status"], "rejected");
    let (_, stored) = lab.get_order(order["id"].as_str().unwrap()).await;
    assert_eq!(stored["status"], "rejected");
    let payment_id = stored["payment_id"]
        .as_str()
        .expect("the payment that still holds money is named on the order")
        .to_owned();
    lab.stop_order();

    let spans = spans_of_trace(&lab.receiver, order["trace_id"].as_str().unwrap());
    let void = calls_to(&spans, &format!("/payments/{payment_id}/void"));
    assert_eq!(void.len(), 1, "tried once, not retried");
    assert_eq!(
        void[0].attr("http.response.status_code").as_deref(),
        Some("503")
    );
    let process = find(&spans, "order_service.process_order");
    assert!(is_error(process), "order-service failed to lift the hold");
    assert!(
        process
            .span
            .events
            .iter()
            .filter(|e| e.name == "exception")
            .any(
                |e| telemetry::testing::attr(&e.attributes, "exception.message")
                    .is_some_and(|m| m.contains("503"))
            ),
        "the exception names the failed void"
    );
    assert_eq!(process.attr("order.status").as_deref(), Some("rejected"));
    assert!(
        !is_error(find(&spans, "POST /orders")),
        "the answer is still the 403 of a rejection"
    );
    let logs = lab.receiver.logs();
    assert!(
        logs.iter()
            .any(|l| l.body() == "voiding the payment authorisation failed"
                && l.span_id() == process.span_id()),
        "an error log in the checkout's span"
    );
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
    let mut lab = Lab::start().await;
    let (status, body) = lab.place("cust-zero", "KB-001", 0, "tok_visa").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("quantity"),
        "{body}"
    );
    lab.stop_order();

    // Refused at validation: the client's mistake, and nothing downstream was called.
    let spans = trace_answered(&lab.receiver, 400);
    assert!(!is_error(find(&spans, "POST /orders")));
    find(&spans, "order_service.validate");
    assert!(
        spans.iter().all(|s| s.span.kind != SpanKind::Client as i32),
        "no call to another service or the database"
    );
    // Counted, without a tier: the request was refused before it said who the customer is.
    assert_eq!(
        order_counter(&lab.receiver, "orders.created"),
        HashMap::from([(series(&[("order.status", "invalid")]), 1)])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_release_is_tried_again_until_the_stock_is_back() {
    let mut lab = Lab::start().await;
    lab.inventory_url = Some(proxy_failing_first(lab.inventory.url(), "/inventory/release").await);
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

impl Lab {
    async fn set_order_scenarios(&self, scenarios: &[&str]) {
        let response = self
            .client
            .post(format!("{}/admin/faults", self.order().url()))
            .json(&json!({ "scenarios": scenarios }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

/// Approves every order after `delay`, as a fraud check that takes its time would.
async fn slow_fraud_stub(delay: Duration) -> String {
    let score = move || async move {
        tokio::time::sleep(delay).await;
        Json(json!({"decision": "approve", "score": 0.08}))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/", post(score));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The names of the `fault.injected` events on `span`.
fn injected(span: &ReceivedSpan) -> Vec<String> {
    span.span
        .events
        .iter()
        .filter(|e| e.name == "fault.injected")
        .filter_map(|e| telemetry::testing::attr(&e.attributes, "fault.name"))
        .collect()
}

/// `n` checkouts sent at once; the slowest one's time, and the trace ids.
async fn checkouts_at_once(lab: &Lab, prefix: &str, n: usize) -> (Duration, Vec<String>) {
    let one = |i: usize| async move {
        let started = std::time::Instant::now();
        let (status, order) = lab
            .place(&format!("{prefix}-{i}"), "DM-011", 1, "tok_visa")
            .await;
        assert_eq!(status, 201, "{order}");
        (
            started.elapsed(),
            order["trace_id"].as_str().unwrap().to_owned(),
        )
    };
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(one(i));
    }
    let results = futures_join_all(handles).await;
    let slowest = results.iter().map(|(d, _)| *d).max().unwrap();
    (slowest, results.into_iter().map(|(_, t)| t).collect())
}

/// Polls every future together on this task, so all of them are in flight at once.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn db_single_connection_queues_concurrent_checkouts_and_the_fix_halves_the_slowest() {
    // Each checkout spends at least 200 ms in the fraud check: while the planted problem
    // holds the connection across it, eight checkouts take turns (at least 1.6 s for the
    // last); fixed they overlap (each about 200 ms, or its payment's at most 300 ms when
    // that is longer).
    let mut lab =
        Lab::start_with_fraud_url(Some(slow_fraud_stub(Duration::from_millis(200)).await)).await;
    let (fixed, fixed_traces) = checkouts_at_once(&lab, "pooled", 8).await;
    lab.set_order_scenarios(&["db_single_connection"]).await;
    let (planted, planted_traces) = checkouts_at_once(&lab, "queued", 8).await;
    lab.stop_order();
    assert!(
        fixed * 2 <= planted,
        "the slowest of 8 checkouts took {fixed:?} fixed and {planted:?} with the planted \
         problem: the fix should at least halve it"
    );

    let waits_in = |traces: &[String]| {
        let spans = lab.receiver.spans();
        let waits: Vec<_> = spans
            .iter()
            .filter(|s| traces.contains(&s.trace_id()) && s.span.name == "wait for connection")
            .map(|s| (s.span.end_time_unix_nano - s.span.start_time_unix_nano) / 1_000_000)
            .collect();
        let marked = spans
            .iter()
            .filter(|s| traces.contains(&s.trace_id()))
            .filter(|s| injected(s) == ["db_single_connection"])
            .count();
        (waits, marked)
    };
    let (fixed_waits, fixed_marked) = waits_in(&fixed_traces);
    assert!(
        fixed_waits.iter().all(|ms| *ms < 100),
        "fixed, statements wait microseconds at most: {fixed_waits:?}"
    );
    assert_eq!(fixed_marked, 0);
    let (planted_waits, planted_marked) = waits_in(&planted_traces);
    assert!(
        planted_waits.iter().filter(|ms| **ms >= 200).count() >= 6,
        "seven checkouts waited for the one connection, most for a whole checkout or more: \
         {planted_waits:?}"
    );
    assert_eq!(
        planted_marked, 8,
        "every checkout names the planted problem"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_trace_context_splits_the_payment_into_a_trace_of_its_own() {
    let mut lab = Lab::start().await;
    let (status, joined) = lab.place("cust-ctx-1", "DM-011", 1, "tok_visa").await;
    assert_eq!(status, 201, "{joined}");
    lab.set_order_scenarios(&["drop_trace_context"]).await;
    let (status, split) = lab.place("cust-ctx-2", "DM-011", 1, "tok_visa").await;
    assert_eq!(status, 201, "{split}");
    lab.stop_order();
    assert!(
        lab.receiver
            .wait_until(Duration::from_secs(10), |r| r
                .spans()
                .iter()
                .filter(|s| s.span.name == "payment.authorize")
                .count()
                == 2)
            .await
    );

    let spans = lab.receiver.spans();
    // The traces that hold the payment of `order`: its payment.authorize span's, and the
    // POST /payments server span that is its parent.
    let payment = |order: &Value| {
        let id = order["id"].as_str().unwrap();
        let authorize = spans
            .iter()
            .find(|s| {
                s.span.name == "payment.authorize" && s.attr("order.id").as_deref() == Some(id)
            })
            .unwrap_or_else(|| panic!("no payment.authorize for {id}"));
        let server = spans
            .iter()
            .find(|s| s.span_id() == authorize.parent_span_id())
            .expect("payment-service's server span");
        (server, order["trace_id"].as_str().unwrap().to_owned())
    };
    let (server, order_trace) = payment(&joined);
    assert_eq!(server.trace_id(), order_trace, "one trace with the fix");
    assert!(
        !server.parent_span_id().is_empty(),
        "a child of order-service's client span"
    );

    let (server, order_trace) = payment(&split);
    assert_ne!(
        server.trace_id(),
        order_trace,
        "the planted problem: payment-service started a second trace"
    );
    assert!(
        server.parent_span_id().is_empty(),
        "a root span: no parent came with the request"
    );
    assert!(
        calls_to(&spans_of_trace(&lab.receiver, &order_trace), "/payments").is_empty(),
        "no client span for the call either"
    );
    let process = spans_of_trace(&lab.receiver, &order_trace)
        .into_iter()
        .find(|s| s.span.name == "order_service.process_order")
        .unwrap();
    assert_eq!(injected(&process), ["drop_trace_context"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_id_metric_label_gives_every_customer_a_series_of_its_own() {
    // Five customers of one tier: without the label they share one series.
    let customers: Vec<String> = (0..)
        .map(|i| format!("cust-series-{i}"))
        .filter(|c| CustomerTier::of(c) == CustomerTier::Bronze)
        .take(5)
        .collect();
    let mut lab = Lab::start().await;
    for customer in &customers {
        assert_eq!(lab.place(customer, "DM-011", 1, "tok_visa").await.0, 201);
    }
    let created = series(&[("order.status", "created"), ("customer.tier", "bronze")]);
    assert!(
        lab.receiver
            .wait_until(Duration::from_secs(10), |r| order_counter(
                r,
                "orders.created"
            )
            .get(&created)
                == Some(&5))
            .await
    );
    assert_eq!(
        order_counter(&lab.receiver, "orders.created").len(),
        1,
        "five customers, one series"
    );

    lab.set_order_scenarios(&["customer_id_metric_label"]).await;
    for customer in &customers {
        assert_eq!(lab.place(customer, "DM-011", 1, "tok_visa").await.0, 201);
    }
    lab.stop_order();
    let counter = order_counter(&lab.receiver, "orders.created");
    let per_customer: HashSet<String> = counter
        .keys()
        .filter_map(|s| s.get("customer.id").cloned())
        .collect();
    assert_eq!(
        per_customer,
        customers.iter().cloned().collect::<HashSet<_>>(),
        "a series per customer: {counter:?}"
    );
    assert_eq!(counter.len(), 1 + customers.len(), "{counter:?}");
    let marked = lab
        .receiver
        .spans()
        .iter()
        .filter(|s| s.span.name == "POST /orders" && injected(s) == ["customer_id_metric_label"])
        .count();
    assert_eq!(
        marked, 5,
        "each counted checkout's server span names the planted problem"
    );
}

/// How long `span` took, in milliseconds.
fn millis(span: &ReceivedSpan) -> f64 {
    (span.span.end_time_unix_nano - span.span.start_time_unix_nano) as f64 / 1e6
}

/// The checkout's business span, and its client spans to the fraud check and to
/// `POST /payments`, of the order `order`.
fn checkout_calls(lab: &Lab, order: &Value) -> (ReceivedSpan, ReceivedSpan, ReceivedSpan) {
    let spans = spans_of_trace(&lab.receiver, order["trace_id"].as_str().unwrap());
    let process = find(&spans, "order_service.process_order").clone();
    let fraud: Vec<_> = spans
        .iter()
        .filter(|s| s.attr("url.full").as_deref() == Some(lab.fraud_url.as_str()))
        .collect();
    let pay = calls_to(&spans, "/payments");
    assert_eq!((fraud.len(), pay.len()), (1, 1), "one call to each");
    for call in [fraud[0], pay[0]] {
        assert_eq!(
            call.parent_span_id(),
            process.span_id(),
            "{} is a child of the checkout",
            call.attr("url.full").unwrap()
        );
    }
    (process, fraud[0].clone(), pay[0].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_downstream_calls_add_the_fraud_check_to_the_checkout_and_the_fix_overlaps_them()
{
    // A fraud check of 300 ms and a payment of 320..600 ms (300 ms added by payment-service's
    // fault layer, then its gateway's 20..300 ms): far apart from their sum, the longer one
    // stands out.
    let mut lab =
        Lab::start_with_fraud_url(Some(slow_fraud_stub(Duration::from_millis(300)).await)).await;
    let slowed = lab
        .client
        .post(format!("{}/admin/faults", lab.payment.url()))
        .json(&json!({ "latency_ms": 300 }))
        .send()
        .await
        .unwrap();
    assert_eq!(slowed.status(), 200);
    let (status, concurrent) = lab.place("cust-together", "DM-011", 1, "tok_visa").await;
    assert_eq!(status, 201, "{concurrent}");
    lab.set_order_scenarios(&["sequential_downstream_calls"])
        .await;
    let (status, sequential) = lab.place("cust-one-by-one", "DM-011", 1, "tok_visa").await;
    assert_eq!(status, 201, "{sequential}");
    lab.stop_order();

    // The fix: both calls are in flight together, and the checkout waits for the longer.
    let (process, fraud, pay) = checkout_calls(&lab, &concurrent);
    let (f, p) = (&fraud.span, &pay.span);
    assert!(
        p.start_time_unix_nano < f.end_time_unix_nano
            && f.start_time_unix_nano < p.end_time_unix_nano,
        "the fraud check and the payment overlap"
    );
    let window = (f.end_time_unix_nano.max(p.end_time_unix_nano)
        - f.start_time_unix_nano.min(p.start_time_unix_nano)) as f64
        / 1e6;
    let (longer, shorter) = (
        millis(&fraud).max(millis(&pay)),
        millis(&fraud).min(millis(&pay)),
    );
    assert!(
        window < longer + shorter / 2.0,
        "the two calls take {window:.0} ms together: about the longer one ({longer:.0} ms), \
         not the sum ({:.0} ms)",
        longer + shorter
    );
    assert!(
        millis(&process) < millis(&fraud) + millis(&pay),
        "the checkout ({:.0} ms) is shorter than the two calls one after the other",
        millis(&process)
    );
    assert!(injected(&process).is_empty());
    let fixed = format!(
        "{:.0} ms concurrent (fraud check {:.0} ms, payment {:.0} ms)",
        millis(&process),
        millis(&fraud),
        millis(&pay)
    );

    // The planted problem: the payment starts once the fraud check is done.
    let (process, fraud, pay) = checkout_calls(&lab, &sequential);
    assert!(
        pay.span.start_time_unix_nano >= fraud.span.end_time_unix_nano,
        "the payment waits for the fraud check"
    );
    assert!(millis(&process) >= millis(&fraud) + millis(&pay));
    assert_eq!(injected(&process), ["sequential_downstream_calls"]);
    eprintln!(
        "checkout: {fixed}; {:.0} ms sequential (fraud check {:.0} ms + payment {:.0} ms)",
        millis(&process),
        millis(&fraud),
        millis(&pay)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sequential_downstream_calls_never_pay_for_a_rejected_order() {
    let mut lab = Lab::start().await;
    lab.set_order_scenarios(&["sequential_downstream_calls"])
        .await;
    let (status, order) = lab.place("fraudster-4", "GP-019", 1, "tok_visa").await;
    assert_eq!(status, 403, "{order}");
    assert_eq!(order["status"], "rejected");
    lab.stop_order();

    let spans = spans_of_trace(&lab.receiver, order["trace_id"].as_str().unwrap());
    assert!(calls_to(&spans, "/payments").is_empty(), "no payment tried");
    assert!(calls_to(&spans, "/void").is_empty(), "nothing to void");
    let process = find(&spans, "order_service.process_order");
    assert_eq!(injected(process), ["sequential_downstream_calls"]);
    assert_eq!(calls_to(&spans, "/inventory/release").len(), 1);
}

/// The transactional outbox: a created order's `order.placed` event reaches the queue, sent
/// by a PRODUCER span in the checkout's trace whose context the message carries; a rejected
/// order sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_created_order_is_sent_to_the_queue_in_its_trace_and_a_rejected_one_is_not() {
    let lab = Lab::start().await;
    let (status, created) = lab.place("cust-queue", "KB-001", 1, "tok_visa").await;
    assert_eq!((status, created["status"].as_str()), (201, Some("created")));
    let (_, rejected) = lab.place("fraudster-queue", "KB-001", 1, "tok_visa").await;
    assert_eq!(rejected["status"], "rejected");
    let trace_id = created["trace_id"].as_str().unwrap().to_owned();

    let queues = queue::Queues::open(lab.dir.path().join("queue.db")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queues.stats("orders").unwrap().visible == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a wrongly sent second event to arrive too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = queues
        .receive("orders", 10, Duration::from_secs(30), None)
        .unwrap()
        .messages;
    assert_eq!(messages.len(), 1, "one event, for the created order only");
    let message = &messages[0];
    let event: Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(event["order_id"], created["id"]);
    assert_eq!(event["payment_id"], created["payment_id"]);
    assert_eq!(message.attributes["event_type"], "order.placed");
    let traceparent = &message.attributes["traceparent"];
    assert!(
        traceparent.contains(&trace_id),
        "the message carries the checkout's trace: {traceparent}"
    );

    let send = lab.send_span().await;
    assert_eq!(send.span.kind, SpanKind::Producer as i32);
    assert_eq!(
        send.trace_id(),
        trace_id,
        "the send is in the checkout's trace"
    );
    assert!(
        traceparent.contains(&send.span_id()),
        "the message carries the send span's context: {traceparent}"
    );
    assert_eq!(
        send.attr("messaging.destination.name").as_deref(),
        Some("orders")
    );
    assert_eq!(
        send.attr("messaging.operation.type").as_deref(),
        Some("send")
    );
    assert_eq!(
        send.attr("messaging.message.id").as_deref(),
        Some(message.message_id.as_str())
    );
    assert_eq!(send.service_name(), "order-service");
}

/// The outbox keeps an event the relay could not send: with the queue locked by another
/// process, order-service is killed (SIGKILL) after storing the order; restarted with the
/// queue free, it sends the event, once, still in the checkout's trace.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_not_yet_sent_survives_a_killed_order_service() {
    let mut lab = Lab::start().await;
    let queue_file = lab.dir.path().join("queue.db");
    let queues = queue::Queues::open(&queue_file).unwrap();
    let blocker = rusqlite::Connection::open(&queue_file).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let (status, order) = lab.place("cust-outbox", "KB-001", 1, "tok_visa").await;
    assert_eq!((status, order["status"].as_str()), (201, Some("created")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Killed, not stopped: nothing gets a chance to finish.
    drop(lab.order.take());
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    assert_eq!(
        queues.stats("orders").unwrap().visible,
        0,
        "nothing was sent while the queue was locked"
    );

    lab.start_order();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while queues.stats("orders").unwrap().visible == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let messages = queues
        .receive("orders", 10, Duration::from_secs(30), None)
        .unwrap()
        .messages;
    assert_eq!(messages.len(), 1, "sent once, after the restart");
    let event: Value = serde_json::from_str(&messages[0].body).unwrap();
    assert_eq!(event["order_id"], order["id"]);
    let trace_id = order["trace_id"].as_str().unwrap();
    assert!(
        messages[0].attributes["traceparent"].contains(trace_id),
        "still in the checkout's trace"
    );
}

/// The planted `drop_message_context`: the send span is still in the checkout's trace, marked
/// with the problem, but the message carries no trace context for the consumer to link to.
#[tokio::test(flavor = "multi_thread")]
async fn drop_message_context_sends_the_event_without_its_trace_context() {
    let lab = Lab::start().await;
    lab.set_order_scenarios(&["drop_message_context"]).await;
    let (status, order) = lab.place("cust-nocontext", "KB-001", 1, "tok_visa").await;
    assert_eq!(status, 201, "{order}");
    let queues = queue::Queues::open(lab.dir.path().join("queue.db")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queues.stats("orders").unwrap().visible == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = queues
        .receive("orders", 10, Duration::from_secs(30), None)
        .unwrap()
        .messages;
    assert_eq!(messages.len(), 1);
    let carried: Vec<&String> = messages[0].attributes.keys().collect();
    assert_eq!(
        carried,
        ["event_type"],
        "no traceparent, tracestate or baggage"
    );

    let trace_id = order["trace_id"].as_str().unwrap().to_owned();
    assert!(
        lab.receiver
            .wait_until(Duration::from_secs(10), |r| r.spans().iter().any(|s| s
                .span
                .name
                == "send orders"
                && s.trace_id() == trace_id))
            .await
    );
    let send = lab
        .receiver
        .spans()
        .into_iter()
        .find(|s| s.span.name == "send orders")
        .unwrap();
    assert_eq!(injected(&send), ["drop_message_context"]);
}

/// A real SQS API on loopback: moto's server (`pip install "moto[server]"`), which keeps
/// SQS's semantics (message ids, attributes, signatures checked for shape) in one process.
struct SqsServer {
    child: std::process::Child,
    endpoint: String,
}

impl SqsServer {
    /// Starts the server on `port` (0: any free port) and waits until it answers.
    async fn start(port: u16) -> Self {
        let port = if port == 0 { free_port() } else { port };
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start moto_server ({err}): install it with \
                     python3 -m pip install \"moto[server]\" (.ci/requirements.txt)"
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = Self { child, endpoint };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    async fn client(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(&self.endpoint)
            .http_client(order_service::event_queue::aws_http_client())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// Creates the queue `orders`; returns its URL.
    async fn create_orders_queue(&self) -> String {
        self.client()
            .await
            .create_queue()
            .queue_name("orders")
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("a queue URL")
    }

    /// Waits up to `wait` for the messages of `url` (taken, not deleted).
    async fn receive(&self, url: &str, wait: Duration) -> Vec<aws_sdk_sqs::types::Message> {
        let client = self.client().await;
        let deadline = std::time::Instant::now() + wait;
        loop {
            let received = client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            let messages = received.messages.unwrap_or_default();
            if !messages.is_empty() || std::time::Instant::now() >= deadline {
                return messages;
            }
        }
    }
}

impl Drop for SqsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// order-service's environment for the SQS queue at `url`, with the credentials and region
/// the AWS SDK reads (and no endpoint: the queue URL's origin is used).
fn sqs_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ORDERS_QUEUE", url.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

fn string_attribute(message: &aws_sdk_sqs::types::Message, key: &str) -> String {
    message
        .message_attributes()
        .and_then(|a| a.get(key))
        .and_then(|v| v.string_value())
        .unwrap_or_default()
        .to_owned()
}

/// With `ORDERS_QUEUE` set to an SQS queue URL (the Kind lab's LocalStack), the outbox sends
/// to SQS with the AWS SDK: the message body is the event, its SQS message attributes
/// carry the checkout's trace context, and the send span is `aws_sqs` with SQS's message id.
#[tokio::test(flavor = "multi_thread")]
async fn with_an_sqs_queue_url_the_event_goes_to_sqs_with_the_trace_context() {
    let sqs = SqsServer::start(0).await;
    let url = sqs.create_orders_queue().await;
    let lab = Lab::start_with(None, sqs_env(&url)).await;
    let (status, created) = lab.place("cust-sqs", "KB-001", 1, "tok_visa").await;
    assert_eq!((status, created["status"].as_str()), (201, Some("created")));
    let trace_id = created["trace_id"].as_str().unwrap().to_owned();

    let messages = sqs.receive(&url, Duration::from_secs(15)).await;
    assert_eq!(messages.len(), 1, "one event for one order");
    let message = &messages[0];
    let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(event["order_id"], created["id"]);
    assert_eq!(string_attribute(message, "event_type"), "order.placed");
    let traceparent = string_attribute(message, "traceparent");
    assert!(
        traceparent.contains(&trace_id),
        "the message carries the checkout's trace: {traceparent:?}"
    );

    let send = lab.send_span().await;
    assert_eq!(send.trace_id(), trace_id);
    assert!(traceparent.contains(&send.span_id()));
    assert_eq!(send.attr("messaging.system").as_deref(), Some("aws_sqs"));
    assert_eq!(
        send.attr("messaging.destination.name").as_deref(),
        Some("orders")
    );
    assert_eq!(
        send.attr("messaging.message.id").as_deref(),
        message.message_id()
    );
}

/// SQS down when the order is placed: the checkout still answers 201, the event waits in
/// the outbox (each failed attempt a failed send span), and once SQS answers it is sent,
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn while_sqs_is_down_the_event_waits_in_the_outbox_and_is_sent_once_it_is_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/123456789012/orders");
    let lab = Lab::start_with(None, sqs_env(&url)).await;
    let (status, created) = lab.place("cust-sqs-down", "KB-001", 1, "tok_visa").await;
    assert_eq!(status, 201, "{created}");
    let trace_id = created["trace_id"].as_str().unwrap().to_owned();
    let failed_send = |r: &OtlpReceiver| {
        r.spans()
            .iter()
            .any(|s| s.span.name == "send orders" && is_error(s) && s.trace_id() == trace_id)
    };
    assert!(
        lab.receiver
            .wait_until(Duration::from_secs(15), failed_send)
            .await,
        "a send to a queue that is down is a failed send span"
    );

    let sqs = SqsServer::start(port).await;
    assert_eq!(sqs.create_orders_queue().await, url);
    let messages = sqs.receive(&url, Duration::from_secs(30)).await;
    assert_eq!(messages.len(), 1, "the event, once");
    let event: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(event["order_id"], created["id"]);
    assert!(string_attribute(&messages[0], "traceparent").contains(&trace_id));
    // Time for a wrongly repeated send to arrive too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        sqs.receive(&url, Duration::from_secs(1)).await.is_empty(),
        "sent once"
    );
}
