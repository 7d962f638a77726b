//! What the OTLP exporters retry, and when: scripted backends over real sockets answer with
//! the codes the OTLP specification names, and record when each attempt arrived.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Answers each call with the next scripted outcome (success once the script runs out).
#[derive(Default)]
struct Script<T> {
    answers: Mutex<VecDeque<T>>,
    calls: Mutex<Vec<Instant>>,
}

impl<T> Script<T> {
    fn new(answers: impl IntoIterator<Item = T>) -> Arc<Self> {
        Arc::new(Script {
            answers: Mutex::new(answers.into_iter().collect()),
            calls: Mutex::new(Vec::new()),
        })
    }
    fn next(&self) -> Option<T> {
        self.calls.lock().unwrap().push(Instant::now());
        self.answers.lock().unwrap().pop_front()
    }
    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

struct GrpcBackend(Arc<Script<Status>>);

#[tonic::async_trait]
impl TraceService for GrpcBackend {
    async fn export(
        &self,
        _: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        match self.0.next() {
            Some(status) => Err(status),
            None => Ok(Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

async fn grpc_backend(script: Arc<Script<Status>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(GrpcBackend(script))
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr.to_string()
}

/// (status, Retry-After header)
type HttpAnswer = (u16, Option<&'static str>);

async fn http_backend(script: Arc<Script<HttpAnswer>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move || {
            let script = script.clone();
            async move {
                let (status, retry_after) = script.next().unwrap_or((200, None));
                let mut headers = HeaderMap::new();
                if let Some(r) = retry_after {
                    headers.insert("retry-after", r.parse().unwrap());
                }
                (StatusCode::from_u16(status).unwrap(), headers, Vec::new())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A collector forwarding OTLP/HTTP input to `exporter`, retrying after 50 ms by default.
async fn collector(exporter: &str) -> (Collector, u16, u16) {
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
  {exporter}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [{name}]}}
"#,
        name = exporter.split(':').next().unwrap()
    ));
    c.wait_healthy(health).await;
    let body = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"op"}]}]}]}"#;
    let accepted = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    (c, http, metrics)
}

const RETRY: &str =
    "retry_on_failure: {initial_interval: 50ms, max_interval: 50ms, randomization_factor: 0}";

/// The collector's own counter once it reads `want` (or what it read after 5 s).
async fn counter(metrics: u16, series: &str, want: &str) -> Option<String> {
    let start = Instant::now();
    loop {
        let page = own_metrics(metrics).await;
        let value = page
            .lines()
            .find(|l| l.starts_with(series))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned());
        if value.as_deref() == Some(want) || start.elapsed() > Duration::from_secs(5) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn gaps(calls: &[Instant]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_resource_exhausted_is_retried_only_with_retry_info_and_after_its_delay() {
    let exhausted_for_a_while = Status::with_error_details(
        Code::ResourceExhausted,
        "over quota",
        ErrorDetails::with_retry_info(Some(Duration::from_millis(800))),
    );
    let script = Script::new([Status::unavailable("restarting"), exhausted_for_a_while]);
    let addr = grpc_backend(script.clone()).await;
    let (c, _, metrics) = collector(&format!(
        "otlp_grpc: {{endpoint: \"{addr}\", tls: {{insecure: true}}, {RETRY}}}"
    ))
    .await;
    assert!(
        eventually(10, || script.calls().len() >= 3).await,
        "{}",
        c.logs()
    );
    let gaps = gaps(&script.calls());
    assert!(
        gaps[0] < Duration::from_millis(500),
        "UNAVAILABLE: the policy's 50 ms, {gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(800),
        "RetryInfo's 800 ms, {gaps:?}"
    );
    assert!(
        eventually(5, || c.logs().contains("export failed; will retry")).await,
        "{}",
        c.logs()
    );
    let sent = "otelcol_exporter_sent_spans_total{exporter=\"otlp_grpc\"}";
    assert_eq!(counter(metrics, sent, "1").await.as_deref(), Some("1"));

    // Without RetryInfo the exhaustion is not said to pass: dropped after one attempt.
    let script = Script::new([
        Status::resource_exhausted("over quota, for good"),
        Status::invalid_argument("never reached"),
    ]);
    let addr = grpc_backend(script.clone()).await;
    let (c, _, metrics) = collector(&format!(
        "otlp_grpc: {{endpoint: \"{addr}\", tls: {{insecure: true}}, {RETRY}}}"
    ))
    .await;
    assert!(
        eventually(10, || c.logs().contains("dropping data: permanent error")).await,
        "{}",
        c.logs()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(script.calls().len(), 1);
    let failed = "otelcol_exporter_send_failed_spans_total{exporter=\"otlp_grpc\"}";
    assert_eq!(counter(metrics, failed, "1").await.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_retries_429_and_5xx_after_retry_after_and_drops_other_client_errors() {
    let script = Script::new([(429, Some("1")), (502, None), (503, None), (504, None)]);
    let url = http_backend(script.clone()).await;
    let (c, _, metrics) = collector(&format!("otlp_http: {{endpoint: \"{url}\", {RETRY}}}")).await;
    assert!(
        eventually(10, || script.calls().len() >= 5).await,
        "{}",
        c.logs()
    );
    let gaps = gaps(&script.calls());
    assert!(
        gaps[0] >= Duration::from_secs(1),
        "Retry-After: 1, {gaps:?}"
    );
    assert!(
        gaps[1..].iter().all(|g| *g < Duration::from_millis(500)),
        "502/503/504: the policy's 50 ms, {gaps:?}"
    );
    let sent = "otelcol_exporter_sent_spans_total{exporter=\"otlp_http\"}";
    assert_eq!(counter(metrics, sent, "1").await.as_deref(), Some("1"));

    let script = Script::new([(400, None), (200, None)]);
    let url = http_backend(script.clone()).await;
    let (c, _, metrics) = collector(&format!("otlp_http: {{endpoint: \"{url}\", {RETRY}}}")).await;
    assert!(
        eventually(10, || c.logs().contains("dropping data: permanent error")).await,
        "{}",
        c.logs()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(script.calls().len(), 1, "a 400 is not retried");
    let failed = "otelcol_exporter_send_failed_spans_total{exporter=\"otlp_http\"}";
    assert_eq!(counter(metrics, failed, "1").await.as_deref(), Some("1"));
}
