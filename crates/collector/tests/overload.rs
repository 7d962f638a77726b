//! The memory_limiter under a flood: ten times its limit offered while the backend is down.
//! The collector must stay under the limit, refuse the rest with a retryable status, count the
//! refusals, deliver every span it accepted once the backend is back, and then accept again.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic_types::StatusExt;

const LIMIT_MIB: u64 = 256;
/// What the issue allows above the limit: the soft limit is 205 MiB (limit − 20% spike).
const PEAK_ALLOWED_MIB: u64 = 300;
const SPANS_PER_REQUEST: u64 = 100;
/// A large attribute per span, as log-like payloads carry: the flood is bytes, not span count.
const PAYLOAD_BYTES: usize = 4096;
const CLIENTS: usize = 4;

fn config(grpc: u16, http: u16, health: u16, metrics: u16, backend_port: u16) -> String {
    format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  memory_limiter: {{check_interval: 1s, limit_mib: {LIMIT_MIB}}}
  batch: {{timeout: 200ms, send_batch_size: 1000}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend_port}
    tls: {{insecure: true}}
    timeout: 2s
    # Large enough that memory, not the queue, is what fills up.
    sending_queue: {{queue_size: 100000}}
    retry_on_failure: {{initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 0s}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp]}}
"#
    )
}

fn request(first_id: u64, payload: &str) -> ExportTraceServiceRequest {
    let spans = (first_id..first_id + SPANS_PER_REQUEST)
        .map(|id| Span {
            trace_id: [id.to_be_bytes(), 1u64.to_be_bytes()].concat(),
            span_id: id.to_be_bytes().to_vec(),
            name: "flood".into(),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![KeyValue {
                key: "payload".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(payload.to_owned())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![resource_spans("flood", spans)],
    }
}

fn ids(first_id: u64) -> impl Iterator<Item = String> {
    (first_id..first_id + SPANS_PER_REQUEST).map(|id| hex::encode(id.to_be_bytes()))
}

/// Peak resident memory of a process, from the kernel's high-water mark.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024
}

/// The value of one of the collector's own counters, summed over its label sets.
async fn own_counter(metrics: u16, name: &str) -> u64 {
    let page = own_metrics(metrics).await;
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[derive(Default)]
struct Tally {
    accepted: HashSet<String>,
    refused_spans: u64,
    offered_bytes: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_memory_limit_offered_stays_under_it_and_loses_nothing_accepted() {
    let (grpc, http, health, metrics, backend_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let mut collector = Collector::start(&config(grpc, http, health, metrics, backend_port));
    collector.wait_healthy(health).await;
    let endpoint = format!("http://127.0.0.1:{grpc}");

    // Phase 1: the backend is down, so nothing drains; offer ten times the limit.
    let target_bytes = (10 * LIMIT_MIB) << 20;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let next_id = Arc::new(AtomicU64::new(1));
    let payload: Arc<str> = "x".repeat(PAYLOAD_BYTES).into();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (tally, next_id, payload, endpoint) = (
                tally.clone(),
                next_id.clone(),
                payload.clone(),
                endpoint.clone(),
            );
            tokio::spawn(async move {
                let mut client = TraceServiceClient::connect(endpoint).await.unwrap();
                loop {
                    if tally.lock().unwrap().offered_bytes >= target_bytes {
                        return;
                    }
                    let first = next_id.fetch_add(SPANS_PER_REQUEST, Ordering::Relaxed);
                    let req = request(first, &payload);
                    let size = req.encoded_len() as u64;
                    let outcome = client.export(req).await;
                    let mut t = tally.lock().unwrap();
                    t.offered_bytes += size;
                    match outcome {
                        Ok(_) => t.accepted.extend(ids(first)),
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            assert!(
                                s.message().contains("memory"),
                                "refused for another reason than memory: {s:?}"
                            );
                            let retry = s.get_details_retry_info().and_then(|r| r.retry_delay);
                            assert_eq!(retry, Some(Duration::from_secs(1)), "RetryInfo");
                            t.refused_spans += SPANS_PER_REQUEST;
                        }
                        Err(s) => panic!("not a retryable refusal: {s:?}"),
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    let peak = peak_rss_mib(collector.child.id());
    let (mut accepted, refused_spans, offered) = {
        let t = tally.lock().unwrap();
        (t.accepted.clone(), t.refused_spans, t.offered_bytes)
    };
    eprintln!(
        "offered {} MiB; accepted {} spans, refused {refused_spans}; collector peak RSS {peak} MiB",
        offered >> 20,
        accepted.len()
    );
    assert!(
        peak < PEAK_ALLOWED_MIB,
        "peak RSS {peak} MiB with memory_limiter at {LIMIT_MIB} MiB\n{}",
        collector.logs()
    );
    assert!(refused_spans > 0, "a flood this size must be refused");
    assert!(
        !accepted.is_empty(),
        "the collector must take data up to its limit"
    );
    assert_eq!(
        own_counter(metrics, "otelcol_receiver_refused_spans_total").await,
        refused_spans,
        "every refused span is counted"
    );
    assert!(
        collector
            .logs()
            .contains("memory usage above the soft limit: refusing data"),
        "{}",
        collector.logs()
    );
    // Nothing has drained, so OTLP/HTTP clients are soon told to come back later too.
    let http_client = reqwest::Client::new();
    let mut http_refusal = None;
    for _ in 0..50 {
        let first = next_id.fetch_add(SPANS_PER_REQUEST, Ordering::Relaxed);
        let response = http_client
            .post(format!("http://127.0.0.1:{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(request(first, &payload).encode_to_vec())
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => accepted.extend(ids(first)),
            503 => {
                http_refusal = Some(response);
                break;
            }
            other => panic!("not a retryable refusal: HTTP {other}"),
        }
    }
    let http_refusal = http_refusal.expect("OTLP/HTTP requests refused while memory is full");
    assert_eq!(http_refusal.headers()["retry-after"], "1");

    // Phase 2: the backend comes up; everything accepted arrives, nothing refused does.
    let (_, received) = backend_on(backend_port).await;
    let all_there = eventually(120, || {
        received.span_ids().iter().collect::<HashSet<_>>().len() >= accepted.len()
    })
    .await;
    let delivered: HashSet<String> = received.span_ids().into_iter().collect();
    assert!(
        all_there,
        "{} of {} accepted spans delivered",
        delivered.len(),
        accepted.len()
    );
    assert_eq!(delivered, accepted, "exactly the accepted spans arrive");

    // Phase 3: with the queue delivered the memory is given back, and data is accepted again.
    let mut client = TraceServiceClient::connect(endpoint).await.unwrap();
    let first = next_id.fetch_add(SPANS_PER_REQUEST, Ordering::Relaxed);
    let mut accepting_again = false;
    for _ in 0..60 {
        if client.export(request(first, &payload)).await.is_ok() {
            accepting_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        accepting_again,
        "the limiter must let data in again once memory is free\n{}",
        collector.logs()
    );
    assert!(
        collector
            .logs()
            .contains("memory usage back below the soft limit: accepting data")
    );
}
