//! The `loadbalancing` exporter over real sockets: real OTLP/gRPC backends on loopback, the
//! real collector binary for the static list, and the load balancer fed by a scripted
//! resolver for the DNS case (the resolver is the only stand-in; exporters and backends
//! are real).

mod common;

use collector::component::{BuildContext, Consumer, Host, SharedConsumer};
use collector::config::{ComponentId, GoDuration};
use collector::exporters::loadbalancing::resolver::Resolver;
use collector::exporters::loadbalancing::{LoadBalancer, RoutingKey};
use collector::exporters::otlp::{self, GrpcExporterConfig};
use collector::pdata::{Batch, Signal};
use collector::telemetry::SelfTelemetry;
use common::{Collector, Received, backend, eventually, free_port, resource_spans};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn trace_id(n: u32) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[12..].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
    id
}

/// Spans of `traces` (3 each, span ids starting at `round * 1000`), interleaved so that
/// every request carries spans of many traces and every trace is spread over 3 requests.
fn requests(traces: std::ops::Range<u32>, round: u32) -> Vec<Vec<ResourceSpans>> {
    (0..3u32)
        .map(|k| {
            let spans = traces
                .clone()
                .map(|t| Span {
                    trace_id: trace_id(t),
                    span_id: ((round * 1000 + k) as u64 * 100_000 + t as u64)
                        .to_be_bytes()
                        .to_vec(),
                    name: format!("op-{k}"),
                    ..Default::default()
                })
                .collect();
            vec![resource_spans("order-service", spans)]
        })
        .collect()
}

async fn send_to_collector(grpc_port: u16, reqs: Vec<Vec<ResourceSpans>>) {
    let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .unwrap();
    for resource_spans in reqs {
        client
            .export(ExportTraceServiceRequest { resource_spans })
            .await
            .unwrap();
    }
}

/// Trace id (hex) → span count, as one backend received them.
fn traces_of(r: &Received) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, s) in r.spans() {
        *m.entry(hex::encode(&s.trace_id)).or_insert(0) += 1;
    }
    m
}

fn total_spans(backends: &[&Arc<Received>]) -> usize {
    backends.iter().map(|b| b.spans().len()).sum()
}

/// Which backend (index) holds each trace; panics if a trace is on two backends.
fn owners(backends: &[&Arc<Received>]) -> BTreeMap<String, usize> {
    let mut owner = BTreeMap::new();
    for (i, b) in backends.iter().enumerate() {
        for t in traces_of(b).into_keys() {
            if let Some(other) = owner.insert(t.clone(), i) {
                panic!("trace {t} reached backend {other} and backend {i}");
            }
        }
    }
    owner
}

fn lb_config(grpc: u16, health: u16, metrics: u16, backends: &[SocketAddr]) -> String {
    let hostnames: Vec<String> = backends.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  loadbalancing:
    protocol:
      otlp:
        tls:
          insecure: true
        retry_on_failure:
          initial_interval: 100ms
          max_interval: 200ms
    resolver:
      static:
        hostnames: [{}]
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
"#,
        hostnames.join(", ")
    )
}

async fn start_collector(backends: &[SocketAddr]) -> (Collector, u16) {
    let (grpc, health) = (free_port(), free_port());
    let mut c = Collector::start(&lb_config(grpc, health, free_port(), backends));
    c.wait_healthy(health).await;
    (c, grpc)
}

#[tokio::test]
async fn spans_of_one_trace_always_reach_the_same_backend() {
    let (a, ra) = backend().await;
    let (b, rb) = backend().await;
    let (c, rc) = backend().await;
    let (_collector, grpc) = start_collector(&[a, b, c]).await;

    send_to_collector(grpc, requests(0..90, 0)).await;
    let all = [&ra, &rb, &rc];
    assert!(
        eventually(20, || total_spans(&all) == 270).await,
        "expected 270 spans, got {}",
        total_spans(&all)
    );
    let owner = owners(&all);
    assert_eq!(owner.len(), 90);
    for (i, r) in all.iter().enumerate() {
        let traces = traces_of(r);
        assert!(!traces.is_empty(), "backend {i} received no trace");
        assert!(
            traces.values().all(|&n| n == 3),
            "backend {i} holds a partial trace: {traces:?}"
        );
    }
}

#[tokio::test]
async fn a_backend_that_is_down_gets_its_data_when_it_is_back_and_no_other_backend_gets_it() {
    let (a, ra) = backend().await;
    let (b, rb) = backend().await;
    rb.unavailable.store(true, Ordering::SeqCst);
    let (_collector, grpc) = start_collector(&[a, b]).await;

    send_to_collector(grpc, requests(0..60, 0)).await;
    // B refuses (and is retried) while A takes its share.
    assert!(eventually(20, || *rb.refused_calls.lock().unwrap() >= 2).await);
    // A's share arrives whole while B is down (a trace's spans never split across backends).
    assert!(
        eventually(20, || {
            let t = traces_of(&ra);
            !t.is_empty() && t.values().all(|&n| n == 3)
        })
        .await
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let a_while_b_down = traces_of(&ra);
    assert!(rb.spans().is_empty());

    rb.unavailable.store(false, Ordering::SeqCst);
    assert!(
        eventually(20, || total_spans(&[&ra, &rb]) == 180).await,
        "expected 180 spans, got {}",
        total_spans(&[&ra, &rb])
    );
    let owner = owners(&[&ra, &rb]);
    assert_eq!(owner.len(), 60);
    assert!(!traces_of(&rb).is_empty(), "B's share was not retried to B");
    // A got nothing more once B recovered: its share was never rerouted.
    assert_eq!(traces_of(&ra), a_while_b_down);
}

#[tokio::test]
async fn a_backend_removed_from_the_static_list_gets_no_new_data_and_other_traces_stay_put() {
    let (a, ra) = backend().await;
    let (b, rb) = backend().await;
    let (c, rc) = backend().await;
    let (mut first, grpc) = start_collector(&[a, b, c]).await;
    send_to_collector(grpc, requests(0..90, 0)).await;
    assert!(eventually(20, || total_spans(&[&ra, &rb, &rc]) == 270).await);
    let before = owners(&[&ra, &rb, &rc]);
    assert!(first.terminate().success());

    // The same backends keep running; C is no longer listed.
    let c_spans = rc.spans().len();
    let (_second, grpc) = start_collector(&[a, b]).await;
    send_to_collector(grpc, requests(0..90, 1)).await;
    assert!(eventually(20, || total_spans(&[&ra, &rb, &rc]) == 540).await);
    assert_eq!(
        rc.spans().len(),
        c_spans,
        "C received data after it was removed"
    );
    // Spans of the second round, by backend: traces A or B held keep going there.
    let second_round = |r: &Received| -> BTreeSet<String> {
        r.spans()
            .into_iter()
            .filter(|(_, s)| s.span_id[..8] >= (1000u64 * 100_000).to_be_bytes()[..])
            .map(|(_, s)| hex::encode(&s.trace_id))
            .collect()
    };
    let (now_a, now_b) = (second_round(&ra), second_round(&rb));
    assert!(now_a.is_disjoint(&now_b));
    assert_eq!(now_a.len() + now_b.len(), 90);
    for (t, was) in before {
        match was {
            0 => assert!(now_a.contains(&t), "trace {t} moved off A"),
            1 => assert!(now_b.contains(&t), "trace {t} moved off B"),
            _ => {}
        }
    }
}

/// A resolver the test scripts: it answers whatever the test last put in.
struct ScriptedResolver(Mutex<Vec<String>>);

#[tonic::async_trait]
impl Resolver for ScriptedResolver {
    async fn resolve(&self) -> Result<Vec<String>, String> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn build_context() -> BuildContext {
    BuildContext {
        id: ComponentId::parse("loadbalancing").unwrap(),
        telemetry: Arc::new(SelfTelemetry::default()),
        host: Arc::new(Host::default()),
    }
}

fn otlp_exporter(ctx: BuildContext) -> impl Fn(&str) -> anyhow::Result<SharedConsumer> {
    move |endpoint: &str| {
        let mut cfg = GrpcExporterConfig {
            endpoint: endpoint.to_string(),
            ..Default::default()
        };
        cfg.tls.insecure = true;
        cfg.retry_on_failure.initial_interval = GoDuration::millis(100);
        otlp::grpc_exporter(&cfg, &ctx, Signal::Traces)
    }
}

async fn consume_rounds(lb: &LoadBalancer, traces: std::ops::Range<u32>, round: u32) {
    for rs in requests(traces, round) {
        lb.consume(Batch::Traces(rs)).await.unwrap();
    }
}

#[tokio::test]
async fn dns_resolution_changes_move_new_data_to_the_current_backends() {
    let (a, ra) = backend().await;
    let (b, rb) = backend().await;
    let (c, rc) = backend().await;
    let resolver = Arc::new(ScriptedResolver(Mutex::new(Vec::new())));
    let ctx = build_context();
    let lb = LoadBalancer::start(
        &ctx,
        Signal::Traces,
        RoutingKey::TraceId,
        resolver.clone(),
        otlp_exporter(ctx.clone()),
    );

    // Nothing resolved yet: the sender is told to retry, nothing is lost silently.
    let err = lb
        .consume(Batch::Traces(requests(0..1, 0).remove(0)))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err}");

    *resolver.0.lock().unwrap() = vec![a.to_string(), b.to_string()];
    assert!(eventually(10, || lb.endpoints().len() == 2).await);
    consume_rounds(&lb, 0..60, 0).await;
    assert!(eventually(20, || total_spans(&[&ra, &rb]) == 180).await);
    assert!(!traces_of(&ra).is_empty() && !traces_of(&rb).is_empty());

    // B's pod goes away, C's arrives.
    *resolver.0.lock().unwrap() = vec![a.to_string(), c.to_string()];
    assert!(eventually(10, || lb.endpoints() == sorted(&[a, c])).await);
    let b_before = rb.spans().len();
    consume_rounds(&lb, 60..120, 1).await;
    assert!(eventually(20, || total_spans(&[&ra, &rb, &rc]) == 360).await);
    assert_eq!(rb.spans().len(), b_before, "B got data after it left");
    assert!(!traces_of(&rc).is_empty(), "the new backend C got nothing");
    owners(&[&ra, &rb, &rc]);
    lb.shutdown().await;
}

fn sorted(addrs: &[SocketAddr]) -> Vec<String> {
    let mut v: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    v.sort();
    v
}

#[test]
fn validate_explains_resolver_and_endpoint_mistakes() {
    let dir = common::temp_dir("lb-validate");
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        r#"
receivers:
  otlp:
    protocols:
      grpc:
exporters:
  loadbalancing:
    protocol:
      otlp:
        endpoint: gateway:4317
    resolver:
      static:
        hostnames: [a]
      dns:
        hostname: gateway
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("set only one resolver"), "{err}");
    assert!(err.contains("endpoint is set for each backend"), "{err}");
}
