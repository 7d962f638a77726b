//! Shared by the trace explorer tests: a collector configured as a small Jaeger
//! (jaeger_storage + jaeger_query + jaeger_storage_exporter) and a known multi-service trace
//! sent to it as OTLP/JSON over HTTP.
#![allow(dead_code)]

use crate::common::{Collector, free_port};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The checkout trace: order-service → inventory-service, order-service → payment-service,
/// where payment.authorize is slow and fails.
pub const CHECKOUT: &str = "5b8efff798038103d269b633813fc60c";
/// A fast, successful order lookup.
pub const LOOKUP: &str = "0af7651916cd43dd8448eb211c80319c";
/// An inventory listing whose two spans arrive in separate requests.
pub const LISTING: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The trace the failing payment links to (not stored).
pub const LINKED: &str = "11111111111111111111111111111111";

pub struct Lab {
    pub collector: Collector,
    pub http: u16,
    pub query: u16,
}

impl Lab {
    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.query)
    }
}

pub fn config(grpc: u16, http: u16, health: u16, metrics: u16, query: u16) -> String {
    format!(
        r#"
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
  jaeger_storage:
    backends:
      lab_store:
        memory:
          max_traces: 1000
  jaeger_query:
    storage:
      traces: lab_store
    http:
      endpoint: 127.0.0.1:{query}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  jaeger_storage_exporter:
    trace_storage: lab_store
service:
  extensions: [health_check, jaeger_storage, jaeger_query]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
    logs:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
"#
    )
}

/// Starts the real collector and sends the three traces.
pub async fn start_lab() -> Lab {
    let (grpc, http, health, metrics, query) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let mut collector = Collector::start(&config(grpc, http, health, metrics, query));
    collector.wait_healthy(health).await;
    let lab = Lab {
        collector,
        http,
        query,
    };
    for body in requests(now_ns() - 60_000_000_000) {
        post_otlp(lab.http, "/v1/traces", &body).await;
    }
    lab
}

/// POSTs an OTLP/JSON request to a collector's OTLP/HTTP receiver and expects 200.
pub async fn post_otlp(http: u16, path: &str, body: &Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn attr(key: &str, v: Value) -> Value {
    let value = match v {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n}),
        other => panic!("no OTLP attribute for {other}"),
    };
    json!({"key": key, "value": value})
}

fn resource(service: &str, extra: &[(&str, Value)]) -> Value {
    let mut attrs = vec![attr("service.name", json!(service))];
    attrs.extend(extra.iter().map(|(k, v)| attr(k, v.clone())));
    json!({"attributes": attrs})
}

struct S<'a> {
    trace: &'a str,
    id: &'a str,
    parent: &'a str,
    name: &'a str,
    kind: u8,
    start_ms: u64,
    dur_ms: u64,
    attrs: Vec<(&'a str, Value)>,
    error: Option<&'a str>,
}

fn span(base: u64, s: S, extra: Value) -> Value {
    let start = base + s.start_ms * 1_000_000;
    let mut v = json!({
        "traceId": s.trace,
        "spanId": s.id,
        "parentSpanId": s.parent,
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + s.dur_ms * 1_000_000).to_string(),
        "attributes": s.attrs.into_iter().map(|(k, v)| attr(k, v)).collect::<Vec<_>>(),
    });
    if let Some(msg) = s.error {
        v["status"] = json!({"code": 2, "message": msg});
    }
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

fn request(resource: Value, spans: Vec<Value>) -> Value {
    json!({"resourceSpans": [{
        "resource": resource,
        "scopeSpans": [{"scope": {"name": "otel-lab-test", "version": "1.0"}, "spans": spans}]
    }]})
}

/// The export requests, in the order they are sent. The checkout trace comes in three
/// requests (one per service), the listing in two.
pub fn requests(base: u64) -> Vec<Value> {
    let order = resource(
        "order-service",
        &[
            ("k8s.namespace.name", json!("shop")),
            ("k8s.pod.name", json!("order-service-7d4b9")),
        ],
    );
    let inventory = resource(
        "inventory-service",
        &[
            ("cloud.platform", json!("aws_ec2")),
            ("host.id", json!("i-0abc")),
        ],
    );
    let payment = resource("payment-service", &[("cloud.platform", json!("aws_ecs"))]);
    let c = CHECKOUT;
    vec![
        request(
            order.clone(),
            vec![
                span(
                    base,
                    S {
                        trace: c,
                        id: "a000000000000001",
                        parent: "",
                        name: "POST /orders",
                        kind: 2,
                        start_ms: 0,
                        dur_ms: 900,
                        attrs: vec![
                            ("http.request.method", json!("POST")),
                            ("http.route", json!("/orders")),
                            ("http.response.status_code", json!(500)),
                        ],
                        error: Some("payment failed"),
                    },
                    json!({}),
                ),
                span(
                    base,
                    S {
                        trace: c,
                        id: "a000000000000002",
                        parent: "a000000000000001",
                        name: "order_service.process_order",
                        kind: 1,
                        start_ms: 5,
                        dur_ms: 885,
                        attrs: vec![("order.items", json!(2))],
                        error: None,
                    },
                    json!({}),
                ),
                span(
                    base,
                    S {
                        trace: c,
                        id: "a000000000000003",
                        parent: "a000000000000002",
                        name: "POST /inventory/reserve",
                        kind: 3,
                        start_ms: 10,
                        dur_ms: 50,
                        attrs: vec![("server.address", json!("127.0.0.1"))],
                        error: None,
                    },
                    json!({}),
                ),
                span(
                    base,
                    S {
                        trace: c,
                        id: "a000000000000005",
                        parent: "a000000000000002",
                        name: "POST /payments",
                        kind: 3,
                        start_ms: 70,
                        dur_ms: 810,
                        attrs: vec![("http.response.status_code", json!(502))],
                        error: Some("502 from payment-service"),
                    },
                    json!({}),
                ),
            ],
        ),
        request(
            inventory.clone(),
            vec![span(
                base,
                S {
                    trace: c,
                    id: "a000000000000004",
                    parent: "a000000000000003",
                    name: "inventory.reserve_stock",
                    kind: 2,
                    start_ms: 12,
                    dur_ms: 46,
                    attrs: vec![
                        ("db.system.name", json!("sqlite")),
                        ("inventory.reserved", json!(true)),
                    ],
                    error: None,
                },
                json!({}),
            )],
        ),
        request(
            payment,
            vec![span(
                base,
                S {
                    trace: c,
                    id: "a000000000000006",
                    parent: "a000000000000005",
                    name: "payment.authorize",
                    kind: 2,
                    start_ms: 75,
                    dur_ms: 800,
                    attrs: vec![
                        ("payment.amount", json!(42.5)),
                        ("payment.card_token", json!("tok_visa")),
                    ],
                    error: Some("card gateway timeout"),
                },
                json!({
                    "events": [{
                        "name": "exception",
                        "timeUnixNano": (base + 870_000_000).to_string(),
                        "attributes": [attr("exception.message", json!("card gateway timeout"))],
                    }],
                    "links": [{"traceId": LINKED, "spanId": "b000000000000001"}],
                }),
            )],
        ),
        request(
            order,
            vec![span(
                base,
                S {
                    trace: LOOKUP,
                    id: "c000000000000001",
                    parent: "",
                    name: "GET /orders/{id}",
                    kind: 2,
                    start_ms: 1000,
                    dur_ms: 20,
                    attrs: vec![("http.response.status_code", json!(200))],
                    error: None,
                },
                json!({}),
            )],
        ),
        request(
            inventory.clone(),
            vec![span(
                base,
                S {
                    trace: LISTING,
                    id: "d000000000000001",
                    parent: "",
                    name: "GET /inventory",
                    kind: 2,
                    start_ms: 2000,
                    dur_ms: 30,
                    attrs: vec![],
                    error: None,
                },
                json!({}),
            )],
        ),
        request(
            inventory,
            vec![span(
                base,
                S {
                    trace: LISTING,
                    id: "d000000000000002",
                    parent: "d000000000000001",
                    name: "inventory.list",
                    kind: 1,
                    start_ms: 2005,
                    dur_ms: 20,
                    attrs: vec![],
                    error: None,
                },
                json!({}),
            )],
        ),
    ]
}

/// A 500-span trace across five services (a fan-out three levels deep), in one request.
pub const BIG: &str = "b16b16b16b16b16b16b16b16b16b16b1";

pub fn big_trace_request(base: u64) -> Value {
    let services = ["edge", "catalog", "pricing", "search", "reviews"];
    let mut by_service: Vec<Vec<Value>> = vec![Vec::new(); services.len()];
    for i in 0..500u64 {
        // Span i's parent is i / 8: a tree with fan-out 8.
        let parent = if i == 0 {
            String::new()
        } else {
            format!("{:016x}", i / 8 + 1)
        };
        let (mut depth, mut n) = (0u64, i);
        while n > 0 {
            n /= 8;
            depth += 1;
        }
        let svc = (i as usize) % services.len();
        by_service[svc].push(span(
            base,
            S {
                trace: BIG,
                id: &format!("{:016x}", i + 1),
                parent: &parent,
                name: &format!("{}.step_{i}", services[svc]),
                kind: if i == 0 { 2 } else { 1 },
                start_ms: depth * 10 + i % 8,
                dur_ms: 400 - depth * 60 - i % 8,
                attrs: vec![("step", json!(i as i64))],
                error: (i == 137).then_some("step 137 failed"),
            },
            json!({}),
        ));
    }
    json!({"resourceSpans": services.iter().zip(by_service).map(|(svc, spans)| json!({
        "resource": resource(svc, &[]),
        "scopeSpans": [{"scope": {"name": "otel-lab-test"}, "spans": spans}],
    })).collect::<Vec<_>>()})
}

/// A collector whose store is kept on disk in `db` (the `sqlite` backend), receiving
/// OTLP/HTTP traces and logs.
pub fn sqlite_config(db: &str, http: u16, health: u16, metrics: u16, query: u16) -> String {
    format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
  jaeger_storage:
    backends:
      lab_store:
        sqlite: {{path: "{db}", max_age: 1h}}
  jaeger_query:
    storage: {{traces: lab_store}}
    http: {{endpoint: "127.0.0.1:{query}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  jaeger_storage_exporter: {{trace_storage: lab_store}}
service:
  extensions: [health_check, jaeger_storage, jaeger_query]
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [jaeger_storage_exporter]}}
    logs: {{receivers: [otlp], exporters: [jaeger_storage_exporter]}}
"#
    )
}
