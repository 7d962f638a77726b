//! End-to-end: real clients → the real collector binary → a real OTLP backend.

mod common;

use common::*;
use std::collections::HashSet;
use std::process::Command;

fn forwarding_config(
    grpc: u16,
    http: u16,
    health: u16,
    metrics: u16,
    backend: std::net::SocketAddr,
) -> String {
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
      http:
        endpoint: 127.0.0.1:{http}
processors:
  batch:
    timeout: 100ms
exporters:
  otlp:
    endpoint: {backend}
    tls:
      insecure: true
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
"#
    )
}

struct Ports {
    grpc: u16,
    http: u16,
    health: u16,
    metrics: u16,
}

async fn forwarding_collector() -> (Collector, Ports, std::sync::Arc<Received>) {
    let (addr, rec) = backend().await;
    let p = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
    };
    let mut c = Collector::start(&forwarding_config(
        p.grpc, p.http, p.health, p.metrics, addr,
    ));
    c.wait_healthy(p.health).await;
    (c, p, rec)
}

fn python_send(protocol: &str, endpoint: &str, count: usize, compression: &str) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_spans.py");
    let out = Command::new("python3")
        .args([script, protocol, endpoint, &count.to_string(), compression])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("span ids as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_over_grpc_and_http_arrive_exactly_once() {
    require_python_sdk();
    let (_c, p, rec) = forwarding_collector().await;
    let grpc_ids = tokio::task::spawn_blocking(move || {
        python_send("grpc", &format!("http://127.0.0.1:{}", p.grpc), 500, "gzip")
    });
    let http_ids = python_send(
        "http",
        &format!("http://127.0.0.1:{}/v1/traces", p.http),
        500,
        "gzip",
    );
    let http_plain = python_send(
        "http",
        &format!("http://127.0.0.1:{}/v1/traces", p.http),
        10,
        "none",
    );
    let grpc_ids = grpc_ids.await.unwrap();
    let mut sent: Vec<String> = grpc_ids
        .into_iter()
        .chain(http_ids)
        .chain(http_plain)
        .collect();
    sent.sort();
    assert_eq!(sent.len(), 1010);
    assert!(
        eventually(10, || rec.span_ids().len() >= 1010).await,
        "only {} spans arrived",
        rec.span_ids().len()
    );
    // Give duplicates a chance to show up before judging "exactly once".
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut got = rec.span_ids();
    got.sort();
    assert_eq!(got, sent, "every span exactly once");
    let services: HashSet<String> = rec
        .spans()
        .iter()
        .filter_map(|(r, _)| r.resource.as_ref())
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .map(|kv| collector::exporters::debug::any_value_text(kv.value.as_ref().unwrap()))
        .collect();
    assert_eq!(
        services,
        HashSet::from(["python-grpc".to_string(), "python-http".to_string()])
    );
}

/// An OTLP/JSON document as the specification's examples write it.
const TRACE_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-client"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0"},
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}},
                       {"key": "retries", "value": {"intValue": "3"}}],
        "status": {"code": 2, "message": "boom"}
      }]
    }]
  }]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_arrives_with_ids_ints_and_enums_intact() {
    let (_c, p, rec) = forwarding_collector().await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.text().await.unwrap(), "{}");
    assert!(eventually(10, || !rec.span_ids().is_empty()).await);
    let (_, span) = rec.spans().pop().unwrap();
    assert_eq!(
        hex::encode(&span.trace_id),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(hex::encode(&span.parent_span_id), "eee19b7ec3c1b173");
    assert_eq!(span.kind, 2);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.status.as_ref().unwrap().code, 2);
    let retries = span
        .attributes
        .iter()
        .find(|kv| kv.key == "retries")
        .unwrap();
    assert_eq!(
        collector::exporters::debug::any_value_text(retries.value.as_ref().unwrap()),
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_http_requests_get_the_spec_status_and_the_collector_keeps_delivering() {
    let (mut c, p, rec) = forwarding_collector().await;
    let url = format!("http://127.0.0.1:{}", p.http);
    let client = reqwest::Client::new();
    let bomb = collector::otlp_codec::gzip(&vec![0u8; 64 << 20]);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "random bytes as protobuf",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .body(vec![0xff, 0x13, 0x37, 0x00, 0x42]),
            400,
        ),
        (
            "truncated JSON",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/json")
                .body(&TRACE_JSON[..100]),
            400,
        ),
        (
            "wrong content type",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "text/plain")
                .body("hi"),
            415,
        ),
        ("wrong method", client.get(format!("{url}/v1/traces")), 405),
        (
            "unknown path",
            client
                .post(format!("{url}/v1/spans"))
                .header("content-type", "application/json")
                .body("{}"),
            404,
        ),
        (
            "unknown encoding",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body("{}"),
            415,
        ),
        (
            "corrupt gzip",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body("not gzip at all"),
            400,
        ),
        (
            "gzip bomb",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(bomb),
            413,
        ),
        (
            "64 MiB body",
            client
                .post(format!("{url}/v1/traces"))
                .header("content-type", "application/x-protobuf")
                .body(vec![0u8; 64 << 20]),
            413,
        ),
        (
            "metrics to a receiver without a metrics pipeline",
            client
                .post(format!("{url}/v1/metrics"))
                .header("content-type", "application/json")
                .body("{}"),
            404,
        ),
    ];
    for (what, req, want) in cases {
        let r = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            r.status().as_u16(),
            want,
            "{what}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    // Raw garbage on the gRPC port closes that connection only.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", p.grpc))
            .await
            .unwrap();
        let _ = s
            .write_all(b"GET / HTTP/1.1\r\nthis is not http/2\r\n\r\n\x00\x01\x02")
            .await;
    }
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "collector died:\n{}",
        c.logs()
    );
    let r = client
        .post(format!("{url}/v1/traces"))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        eventually(10, || rec.span_ids().len() == 1).await,
        "valid data still delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_for_a_while_still_gets_every_span() {
    let (addr, rec) = backend().await;
    rec.unavailable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let p = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
    };
    let mut c = Collector::start(&forwarding_config(
        p.grpc, p.http, p.health, p.metrics, addr,
    ));
    c.wait_healthy(p.health).await;
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for r in 0..200u32 {
        let req = client
            .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
            .header("content-type", "application/json")
            .body(json_spans(r * 100, 100))
            .send();
        requests.push(async move { req.await.unwrap().status() });
    }
    let sent: HashSet<String> = (0..20_000u32).map(|i| format!("{:016x}", i + 1)).collect();
    // All at once, as many SDKs exporting together: each is acknowledged when its batch
    // has been handed on.
    for status in futures::future::join_all(requests).await {
        assert_eq!(status, 200);
    }
    assert!(
        eventually(10, || *rec.refused_calls.lock().unwrap() >= 2).await,
        "the collector should be retrying"
    );
    rec.unavailable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        eventually(30, || rec.span_ids().len() >= 20_000).await,
        "only {} of 20000 delivered:\n{}",
        rec.span_ids().len(),
        c.logs()
    );
    let got: HashSet<String> = rec.span_ids().into_iter().collect();
    assert_eq!(got, sent);
    let metrics = own_metrics(p.metrics).await;
    assert!(
        metrics.contains(
            "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"http\"} 20000\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("otelcol_exporter_sent_spans_total{exporter=\"otlp\"} 20000\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_waits_for_the_batch_and_sigterm_flushes_it() {
    let (addr, rec) = backend().await;
    let p = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
    };
    // A batch that would wait a minute: only shutdown can send it.
    let cfg = forwarding_config(p.grpc, p.http, p.health, p.metrics, addr)
        .replace("timeout: 100ms", "timeout: 60s\n    wait_for_result: true");
    let mut c = Collector::start(&cfg);
    c.wait_healthy(p.health).await;
    let url = format!("http://127.0.0.1:{}/v1/traces", p.http);
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(TRACE_JSON)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !request.is_finished(),
        "no acknowledgement while the data only sits in the batch processor"
    );
    assert!(rec.span_ids().is_empty(), "held by the batch processor");
    let status = c.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(
        request.await.unwrap().unwrap(),
        200,
        "acknowledged once handed on at shutdown"
    );
    assert_eq!(rec.span_ids(), vec!["eee19b7ec3c1b174".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limiter_refusals_are_retryable_on_both_transports() {
    let (addr, _rec) = backend().await;
    let p = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
    };
    // A limit every process is above: everything is refused, retryably.
    let cfg = forwarding_config(p.grpc, p.http, p.health, p.metrics, addr)
        .replace("processors:\n  batch:", "processors:\n  memory_limiter:\n    check_interval: 50ms\n    limit_mib: 2\n    spike_limit_mib: 1\n  batch:")
        .replace("processors: [batch]", "processors: [memory_limiter, batch]");
    let mut c = Collector::start(&cfg);
    c.wait_healthy(p.health).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.unwrap().contains("high memory usage"));

    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(format!("http://127.0.0.1:{}", p.grpc)).await.unwrap();
    let req: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_str(TRACE_JSON).unwrap();
    let err = client.export(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let metrics = own_metrics(p.metrics).await;
    assert!(
        metrics.contains(
            "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"grpc\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"http\"} 1\n"
        ),
        "{metrics}"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_turns_unhealthy_while_exports_keep_failing_and_recovers() {
    let (addr, rec) = backend().await;
    rec.unavailable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let p = Ports {
        grpc: free_port(),
        http: free_port(),
        health: free_port(),
        metrics: free_port(),
    };
    let cfg = forwarding_config(p.grpc, p.http, p.health, p.metrics, addr).replace(
        &format!("endpoint: 127.0.0.1:{}\nreceivers", p.health),
        &format!("endpoint: 127.0.0.1:{}\n    check_collector_pipeline:\n      enabled: true\n      interval: 500ms\nreceivers", p.health),
    );
    let mut c = Collector::start(&cfg);
    c.wait_healthy(p.health).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let health = format!("http://127.0.0.1:{}/", p.health);
    let mut body = String::new();
    for _ in 0..100 {
        let r = reqwest::get(&health).await.unwrap();
        if r.status() == 503 {
            body = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        body.contains("\"exporter\":\"otlp\"") && body.contains("backend is down"),
        "unhealthy with the failing exporter named: {body}"
    );
    rec.unavailable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(eventually(10, || rec.span_ids().len() == 1).await);
    assert_eq!(
        reqwest::get(&health).await.unwrap().status(),
        200,
        "healthy again after a successful export"
    );
}

fn encoded_request(
    name: &str,
    attribute: Option<opentelemetry_proto::tonic::common::v1::AnyValue>,
) -> Vec<u8> {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        attributes: attribute
            .map(|v| KeyValue {
                key: "deep".into(),
                value: Some(v),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_protobuf_is_refused_on_both_transports() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value::Value};
    let (mut c, p, rec) = forwarding_collector().await;
    // Invalid UTF-8 where protobuf requires a string.
    let mut bad_utf8 = encoded_request("ZZZZ", None);
    let at = bad_utf8.windows(4).position(|w| w == b"ZZZZ").unwrap();
    bad_utf8[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
    // AnyValue nested deeper than any decoder should follow.
    let mut deep = AnyValue {
        value: Some(Value::StringValue("bottom".into())),
    };
    for _ in 0..200 {
        deep = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue { values: vec![deep] })),
        };
    }
    let deep = encoded_request("deep", Some(deep));
    let client = reqwest::Client::new();
    for (what, body) in [
        ("invalid UTF-8", bad_utf8.clone()),
        ("AnyValue nested 200 deep", deep.clone()),
    ] {
        let r = client
            .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
    }
    // The same bodies as gRPC messages, and one over the 4 MiB default limit.
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", p.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let huge = encoded_request(&"x".repeat(5 << 20), None);
    for (what, body, codes) in [
        (
            "invalid UTF-8",
            bad_utf8,
            vec![tonic::Code::Internal, tonic::Code::InvalidArgument],
        ),
        (
            "nested 200 deep",
            deep,
            vec![tonic::Code::Internal, tonic::Code::InvalidArgument],
        ),
        (
            "5 MiB message",
            huge,
            vec![tonic::Code::OutOfRange, tonic::Code::ResourceExhausted],
        ),
    ] {
        grpc.ready().await.unwrap();
        let r: Result<tonic::Response<bytes::Bytes>, tonic::Status> = grpc
            .unary(
                tonic::Request::new(bytes::Bytes::from(body)),
                path.clone(),
                RawCodec,
            )
            .await;
        let code = r.expect_err(what).code();
        assert!(codes.contains(&code), "{what}: {code:?}");
    }
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "collector died:\n{}",
        c.logs()
    );
    let r = client
        .post(format!("http://127.0.0.1:{}/v1/traces", p.http))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        eventually(10, || rec.span_ids()
            == vec!["eee19b7ec3c1b174".to_string()])
        .await,
        "only the valid span arrives"
    );
}

/// Sends raw bytes as the gRPC message, so the server's decoder is what is tested.
#[derive(Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sending_queue_refuses_upstream_counting_in_its_sizer_and_loses_nothing() {
    let (addr, rec) = backend().await;
    rec.unavailable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (http, health, metrics) = (free_port(), free_port(), free_port());
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  otlp:
    endpoint: {addr}
    tls: {{insecure: true}}
    sending_queue: {{sizer: items, queue_size: 1000, num_consumers: 1}}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 0s}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#
    ));
    c.wait_healthy(health).await;
    let client = reqwest::Client::new();
    let post = |first: u32, n: u32| {
        client
            .post(format!("http://127.0.0.1:{http}/v1/traces"))
            .header("content-type", "application/json")
            .body(json_spans(first, n))
            .send()
    };
    // The one worker takes the first batch and keeps retrying it; the queue holds the rest.
    assert_eq!(post(0, 400).await.unwrap().status(), 200);
    assert!(eventually(10, || *rec.refused_calls.lock().unwrap() >= 1).await);
    assert_eq!(post(400, 400).await.unwrap().status(), 200);
    assert_eq!(post(800, 400).await.unwrap().status(), 200);

    let full = post(1200, 400).await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    let body = full.text().await.unwrap();
    assert!(
        body.contains("sending queue of exporter otlp is full (800 of 1000 items); retry later"),
        "{body}"
    );
    let too_big = post(5000, 1001).await.unwrap();
    assert_eq!(too_big.status(), 400, "no retry can ever fit it");
    assert!(too_big.text().await.unwrap().contains(
        "a batch of 1001 items is larger than the whole sending queue (queue_size 1000)"
    ));
    let page = own_metrics(metrics).await;
    for line in [
        "otelcol_exporter_queue_size{exporter=\"otlp\",data_type=\"traces\"} 800\n",
        "otelcol_exporter_queue_capacity{exporter=\"otlp\",data_type=\"traces\"} 1000\n",
        "otelcol_exporter_enqueue_failed_spans_total{exporter=\"otlp\"} 1401\n",
        "otelcol_receiver_refused_spans_total{receiver=\"otlp\",transport=\"http\"} 1401\n",
    ] {
        assert!(page.contains(line), "{line:?} not in\n{page}");
    }

    rec.unavailable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(eventually(15, || rec.span_ids().len() >= 1200).await);
    let got: HashSet<String> = rec.span_ids().into_iter().collect();
    let accepted: HashSet<String> = (0..1200u32).map(|i| format!("{:016x}", i + 1)).collect();
    assert_eq!(
        got, accepted,
        "everything accepted arrives, nothing refused does"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_after_its_senders_were_acknowledged_is_reported_as_dropped() {
    let (addr, _rec) = backend().await;
    let (http, health, metrics) = (free_port(), free_port(), free_port());
    // Its own metrics on a port of its own: the default 8888 may be a running lab's.
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  batch: {{timeout: 50ms}}
exporters:
  otlp:
    endpoint: {addr}
    tls: {{insecure: true}}
    sending_queue: {{sizer: items, queue_size: 10}}
service:
  extensions: [health_check]
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
"#
    ));
    c.wait_healthy(health).await;
    let accepted = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(json_spans(0, 30))
        .send()
        .await
        .unwrap();
    assert_eq!(
        accepted.status(),
        200,
        "the batch processor acknowledges at once"
    );
    assert!(
        eventually(5, || c.logs().contains(
            "batch refused downstream after its senders were acknowledged: dropped"
        ))
        .await,
        "{}",
        c.logs()
    );
    assert!(c.logs().contains("items=30"), "{}", c.logs());
}
