//! Test harness: a real OTLP/gRPC backend that records what it receives, and the real
//! `collector` binary started on a config written for the test.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
    logs_service_server::{LogsService, LogsServiceServer},
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// What a backend has received.
#[derive(Default)]
pub struct Received {
    pub traces: Mutex<Vec<ResourceSpans>>,
    pub metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    pub logs: Mutex<Vec<ExportLogsServiceRequest>>,
    /// While set, every export is answered UNAVAILABLE (a backend that is down).
    pub unavailable: AtomicBool,
    pub refused_calls: Mutex<u64>,
}

impl Received {
    pub fn span_ids(&self) -> Vec<String> {
        self.traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| hex::encode(&s.span_id))
            .collect()
    }
    pub fn spans(&self) -> Vec<(ResourceSpans, opentelemetry_proto::tonic::trace::v1::Span)> {
        let mut out = Vec::new();
        for r in self.traces.lock().unwrap().iter() {
            for s in r.scope_spans.iter().flat_map(|s| &s.spans) {
                out.push((r.clone(), s.clone()));
            }
        }
        out
    }
    fn refuse(&self) -> Result<(), Status> {
        if self.unavailable.load(Ordering::SeqCst) {
            *self.refused_calls.lock().unwrap() += 1;
            return Err(Status::unavailable("backend is down (test)"));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Backend(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Backend {
    async fn export(
        &self,
        r: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.refuse()?;
        self.0
            .traces
            .lock()
            .unwrap()
            .extend(r.into_inner().resource_spans);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}
#[tonic::async_trait]
impl MetricsService for Backend {
    async fn export(
        &self,
        r: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.refuse()?;
        self.0.metrics.lock().unwrap().push(r.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}
#[tonic::async_trait]
impl LogsService for Backend {
    async fn export(
        &self,
        r: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.0.refuse()?;
        self.0.logs.lock().unwrap().push(r.into_inner());
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts an OTLP/gRPC backend on 127.0.0.1 (a free port).
pub async fn backend() -> (SocketAddr, Arc<Received>) {
    backend_on(0).await
}

/// Starts an OTLP/gRPC backend on 127.0.0.1:`port`.
pub async fn backend_on(port: u16) -> (SocketAddr, Arc<Received>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Arc::new(Received::default());
    let b = Backend(rec.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(b.clone())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
            )
            .add_service(
                MetricsServiceServer::new(b.clone())
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .add_service(
                LogsServiceServer::new(b)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, rec)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    // The kernel may hand the same free port to two binds in a row; never give one out twice
    // in this test process, or a collector's health check and metrics endpoint can collide.
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The real collector binary, killed when dropped.
pub struct Collector {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "otel-lab-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

impl Collector {
    /// Writes `yaml` to a file and starts `collector --config` on it.
    pub fn start(yaml: &str) -> Collector {
        let dir = temp_dir("collector");
        let cfg = dir.join("config.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let log = dir.join("collector.log");
        let child = Command::new(env!("CARGO_BIN_EXE_collector"))
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start collector");
        Collector { child, dir, log }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the health check at `port` answers 200.
    pub async fn wait_healthy(&mut self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("collector exited with {status} at start:\n{}", self.logs());
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("collector not healthy after 20s:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), 15);
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!(
                    "collector did not stop within 30s of SIGTERM:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Collector {
    /// SIGKILL: no shutdown, no flush.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The collector's own metrics page (service.telemetry.metrics.address on 127.0.0.1:`port`).
pub async fn own_metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One resource (`service.name` = `service`) holding `spans` in one scope.
pub fn resource_spans(
    service: &str,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> ResourceSpans {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An OTLP/JSON request of `n` spans (ten to a trace) whose span ids are `first + 1`,
/// `first + 2`, … as 16 hex digits.
pub fn json_spans(first: u32, n: u32) -> String {
    let spans: Vec<String> = (first..first + n)
        .map(|i| format!(r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"op","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}"#, i / 10 + 1, i + 1))
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"svc"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

/// Polls `f` until it is true or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// Fails the test, saying how to install it, unless the Python OpenTelemetry SDK (the
/// reference client) is importable: a test whose tool is missing fails, it does not pass by
/// doing nothing.
pub fn require_python_sdk() {
    let ok = Command::new("python3")
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the OpenTelemetry Python SDK is not installed: pip install -r .ci/requirements.txt"
    );
}
