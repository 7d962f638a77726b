//! What the trace explorer's store costs: resident memory per span, write throughput, and
//! search and trace-by-id latencies (p50/p95) over a store filled with lab-shaped traces
//! (three services, eight spans a trace, eight attributes a span, a few log lines a trace).
//! Figures, not a criterion run: memory and tail latencies are what matter here.
//!
//! `cargo bench -p collector --bench trace_store` (part of `make bench`). TRACES (default
//! 20000) changes the size.

use collector::extensions::jaeger_storage::model::{SpanKind, TraceId};
use collector::extensions::jaeger_storage::store::{Limits, LogQuery, MemoryStore, TraceQuery};
use collector::extensions::jaeger_storage::translate;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::time::{Duration, Instant};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", service),
            kv("service.version", "0.1.0"),
            kv("deployment.environment.name", "lab"),
        ],
        ..Default::default()
    })
}

const SERVICES: [&str; 3] = ["order-service", "inventory-service", "payment-service"];
const OPERATIONS: [&str; 8] = [
    "POST /orders",
    "order_service.process_order",
    "POST /inventory/reserve",
    "inventory.reserve_stock",
    "UPDATE products",
    "POST /payments",
    "payment.authorize",
    "payment.gateway_call",
];

/// Trace `t`'s spans, one ResourceSpans per service, and its log lines.
fn trace(t: u64, now_ns: u64) -> (Vec<ResourceSpans>, ResourceLogs) {
    let trace_id = (0x1000_0000_0000_u128 + u128::from(t))
        .to_be_bytes()
        .to_vec();
    let start = now_ns - (20_000 - (t % 20_000)) * 100_000_000;
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); 3];
    for (i, op) in OPERATIONS.iter().enumerate() {
        let id = t * 8 + i as u64 + 1;
        let service = i * 3 / OPERATIONS.len();
        by_service[service].push(Span {
            trace_id: trace_id.clone(),
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: if i == 0 {
                vec![]
            } else {
                (id - 1).to_be_bytes().to_vec()
            },
            name: (*op).into(),
            kind: if i.is_multiple_of(2) { 2 } else { 1 },
            start_time_unix_nano: start + i as u64 * 1_000_000,
            end_time_unix_nano: start + 90_000_000 - i as u64 * 1_000_000,
            attributes: vec![
                kv("http.request.method", "POST"),
                kv("http.route", op),
                kv("url.path", op),
                kv("server.address", "127.0.0.1"),
                kv("order.id", &format!("ord_{t:08x}")),
                kv(
                    "customer.tier",
                    ["gold", "silver", "bronze"][(t % 3) as usize],
                ),
                kv("session.id", &format!("s-{}", t % 500)),
                kv(
                    "http.response.status_code",
                    if t.is_multiple_of(20) { "500" } else { "200" },
                ),
            ],
            status: (t.is_multiple_of(20)).then_some(Status {
                code: 2,
                message: "card gateway timeout".into(),
            }),
            ..Default::default()
        });
    }
    let spans = by_service
        .into_iter()
        .enumerate()
        .map(|(s, spans)| ResourceSpans {
            resource: resource(SERVICES[s]),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let logs = ResourceLogs {
        resource: resource("order-service"),
        scope_logs: vec![ScopeLogs {
            log_records: (0..3u64)
                .map(|k| LogRecord {
                    time_unix_nano: start + k * 10_000_000,
                    severity_text: if t.is_multiple_of(20) && k == 2 {
                        "ERROR"
                    } else {
                        "INFO"
                    }
                    .into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "order ord_{t:08x} step {k}"
                        ))),
                    }),
                    trace_id: trace_id.clone(),
                    span_id: (t * 8 + 2).to_be_bytes().to_vec(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    (spans, logs)
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.95))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let traces: u64 = std::env::var("TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    // Build the input first, so only the store's own growth is measured.
    let input: Vec<_> = (0..traces).map(|t| trace(t, now_ns)).collect();
    let spans_total = traces as usize * OPERATIONS.len();
    let store = MemoryStore::new(Limits {
        max_traces: traces as usize,
        max_spans: spans_total,
    })
    .with_max_logs(traces as usize * 3);
    let before = resident_bytes();
    let started = Instant::now();
    for chunk in input.chunks(64) {
        let resources: Vec<ResourceSpans> = chunk.iter().flat_map(|(s, _)| s.clone()).collect();
        let logs: Vec<ResourceLogs> = chunk.iter().map(|(_, l)| l.clone()).collect();
        store.write(translate::spans_from_otlp(&resources).0);
        store.write_logs(translate::logs_from_otlp(&logs));
    }
    let write = started.elapsed();
    let grown = resident_bytes().saturating_sub(before);
    assert_eq!(store.counts(), (traces as usize, spans_total));

    let end_us = now_ns / 1000 + 1;
    let mut searches = Vec::new();
    for i in 0..300u64 {
        let q = TraceQuery {
            service: SERVICES[(i % 3) as usize].into(),
            operation: i
                .is_multiple_of(2)
                .then(|| OPERATIONS[(i % 8) as usize].into()),
            span_kind: None,
            tags: if i.is_multiple_of(3) {
                vec![("customer.tier".into(), "gold".into())]
            } else {
                vec![]
            },
            start_min: 0,
            start_max: end_us,
            duration_min: i.is_multiple_of(4).then_some(50_000),
            duration_max: None,
            limit: 20,
        };
        let t = Instant::now();
        std::hint::black_box(store.find_traces(&q));
        searches.push(t.elapsed());
    }
    let mut by_id = Vec::new();
    for i in 0..1000u64 {
        let id = TraceId((0x1000_0000_0000_u128 + u128::from((i * 7919) % traces)).to_be_bytes());
        let t = Instant::now();
        std::hint::black_box(store.get_trace(id));
        by_id.push(t.elapsed());
    }
    let mut log_searches = Vec::new();
    for i in 0..100u64 {
        let q = LogQuery {
            text: Some(format!("ord_{:08x}", i * 37)),
            start: 0,
            end: end_us,
            limit: 20,
            ..Default::default()
        };
        let t = Instant::now();
        std::hint::black_box(store.find_logs(&q));
        log_searches.push(t.elapsed());
    }
    let _ = SpanKind::Server;
    let (s50, s95) = percentiles(searches);
    let (i50, i95) = percentiles(by_id);
    let (l50, l95) = percentiles(log_searches);
    println!(
        "trace store: {traces} traces, {spans_total} spans (8 attributes each), {} log records",
        traces * 3
    );
    println!(
        "  resident memory: {:.0} bytes per span (log records included), {:.1} MiB in all",
        grown as f64 / spans_total as f64,
        grown as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  write: {:.2} µs per span ({:.0} spans/s)",
        write.as_secs_f64() * 1e6 / spans_total as f64,
        spans_total as f64 / write.as_secs_f64()
    );
    println!(
        "  search (service, operation, tag, minDuration; limit 20): p50 {s50:.2?}, p95 {s95:.2?}"
    );
    println!("  trace by id: p50 {i50:.2?}, p95 {i95:.2?}");
    println!("  log text search (limit 20): p50 {l50:.2?}, p95 {l95:.2?}");
}
