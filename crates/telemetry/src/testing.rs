//! A real OTLP/gRPC receiver for tests (feature `testing`): it listens on 127.0.0.1:0,
//! accepts traces, metrics and logs, and keeps them for the test to inspect. Point a
//! spawned service at it with `OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint()`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

#[derive(Default)]
struct Store {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Store>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[tonic::async_trait]
impl TraceService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.lock().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.lock().metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.lock().logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// One received span with the resource it came with.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub resource: Resource,
    pub span: Span,
}

/// One received log record with its resource.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    pub resource: Resource,
    pub record: LogRecord,
}

/// One received metric (one export's data points) with its resource.
#[derive(Debug, Clone)]
pub struct ReceivedMetric {
    pub resource: Resource,
    pub metric: Metric,
}

impl ReceivedSpan {
    pub fn service_name(&self) -> String {
        resource_service_name(&self.resource)
    }
    pub fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }
    /// The value of `key` when it is an integer attribute (`None` for a missing key and for
    /// any other type, such as the string a `u64` tracing field becomes).
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value {
                Some(any_value::Value::IntValue(i)) => Some(i),
                _ => None,
            })
    }
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

impl ReceivedLog {
    pub fn service_name(&self) -> String {
        resource_service_name(&self.resource)
    }
    pub fn body(&self) -> String {
        self.record
            .body
            .as_ref()
            .map(any_value_string)
            .unwrap_or_default()
    }
    pub fn trace_id(&self) -> String {
        hex(&self.record.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.record.span_id)
    }
}

impl ReceivedMetric {
    pub fn service_name(&self) -> String {
        resource_service_name(&self.resource)
    }
}

/// Lower-case hex of an id; empty for an empty id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A readable string for any OTLP value.
pub fn any_value_string(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The value of `key` in an attribute list, as a string.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(any_value_string)
}

fn resource_service_name(resource: &Resource) -> String {
    attr(&resource.attributes, "service.name").unwrap_or_default()
}

/// The running receiver: OTLP/gRPC on one port, OTLP/HTTP (protobuf, `/v1/traces`,
/// `/v1/metrics`, `/v1/logs`) on another, both into the same store. Dropping it stops both.
pub struct OtlpReceiver {
    addr: SocketAddr,
    http_addr: SocketAddr,
    store: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Decodes one OTLP/HTTP protobuf body into the store and answers with an empty response.
fn http_export<Req, Resp>(
    store: Shared,
    keep: fn(&mut Store, Req),
) -> impl Fn(axum::body::Bytes) -> std::future::Ready<axum::response::Response> + Clone
where
    Req: prost::Message + Default,
    Resp: prost::Message + Default,
{
    move |body: axum::body::Bytes| {
        use axum::response::IntoResponse as _;
        let response = match Req::decode(body) {
            Ok(request) => {
                keep(&mut store.lock(), request);
                (
                    [(http::header::CONTENT_TYPE, "application/x-protobuf")],
                    Resp::default().encode_to_vec(),
                )
                    .into_response()
            }
            Err(err) => (http::StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        };
        std::future::ready(response)
    }
}

impl OtlpReceiver {
    /// Starts the receiver on 127.0.0.1 and an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let store = Shared::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(store.clone()))
            .add_service(MetricsServiceServer::new(store.clone()))
            .add_service(LogsServiceServer::new(store.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let grpc = tokio::spawn(async move {
            if let Err(err) = server.serve_with_incoming(incoming).await {
                eprintln!("test OTLP/gRPC receiver stopped: {err}");
            }
        });

        let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let http_addr = http_listener.local_addr()?;
        let routes = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(http_export::<_, ExportTraceServiceResponse>(
                    store.clone(),
                    |s: &mut Store, r: ExportTraceServiceRequest| s.traces.push(r),
                )),
            )
            .route(
                "/v1/metrics",
                axum::routing::post(http_export::<_, ExportMetricsServiceResponse>(
                    store.clone(),
                    |s: &mut Store, r: ExportMetricsServiceRequest| s.metrics.push(r),
                )),
            )
            .route(
                "/v1/logs",
                axum::routing::post(http_export::<_, ExportLogsServiceResponse>(
                    store.clone(),
                    |s: &mut Store, r: ExportLogsServiceRequest| s.logs.push(r),
                )),
            );
        let http = tokio::spawn(async move {
            if let Err(err) = axum::serve(http_listener, routes).await {
                eprintln!("test OTLP/HTTP receiver stopped: {err}");
            }
        });
        Ok(Self {
            addr,
            http_addr,
            store,
            tasks: vec![grpc, http],
        })
    }

    /// `http://127.0.0.1:PORT` of the gRPC port, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` of the OTLP/HTTP port, for `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let store = self.store.lock();
        store
            .traces
            .iter()
            .flat_map(|req| &req.resource_spans)
            .flat_map(|rs| {
                let resource = rs.resource.clone().unwrap_or_default();
                rs.scope_spans.iter().flat_map(move |ss| {
                    let resource = resource.clone();
                    ss.spans.iter().map(move |span| ReceivedSpan {
                        resource: resource.clone(),
                        span: span.clone(),
                    })
                })
            })
            .collect()
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        let store = self.store.lock();
        store
            .logs
            .iter()
            .flat_map(|req| &req.resource_logs)
            .flat_map(|rl| {
                let resource = rl.resource.clone().unwrap_or_default();
                rl.scope_logs.iter().flat_map(move |sl| {
                    let resource = resource.clone();
                    sl.log_records.iter().map(move |record| ReceivedLog {
                        resource: resource.clone(),
                        record: record.clone(),
                    })
                })
            })
            .collect()
    }

    /// Every metric received so far (one entry per metric per export).
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        let store = self.store.lock();
        store
            .metrics
            .iter()
            .flat_map(|req| &req.resource_metrics)
            .flat_map(|rm| {
                let resource = rm.resource.clone().unwrap_or_default();
                rm.scope_metrics.iter().flat_map(move |sm| {
                    let resource = resource.clone();
                    sm.metrics.iter().map(move |metric| ReceivedMetric {
                        resource: resource.clone(),
                        metric: metric.clone(),
                    })
                })
            })
            .collect()
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held. Export
    /// is asynchronous, so tests wait for what they expect instead of sleeping.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A workload binary running as a child process, for tests that need real processes (each
/// with its own global telemetry providers). Its stderr is collected; it is told to stop
/// with SIGTERM, like a container runtime would, so the graceful shutdown (and the final
/// telemetry flush) is exercised.
pub struct ServiceProcess {
    child: std::process::Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `program` with `LISTEN_ADDR=127.0.0.1:0` plus `envs` (which may override it),
    /// and waits until it logs the address it listens on (`addr=HOST:PORT` on the line with
    /// "listening").
    pub fn spawn(program: &std::path::Path, envs: &[(&str, String)]) -> std::io::Result<Self> {
        use std::io::{BufRead as _, BufReader};
        let mut command = std::process::Command::new(program);
        command
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening")
                    && let Some(addr) = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("addr="))
                        .and_then(|a| a.trim_matches('"').parse::<SocketAddr>().ok())
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Ok(Self {
                child,
                addr,
                stderr,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let output = stderr
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .join("\n");
                Err(std::io::Error::other(format!(
                    "{} did not report a listening address; its stderr:\n{output}",
                    program.display()
                )))
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn stop(mut self) -> std::io::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()?;
        self.child.wait()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The path of another workspace binary, built first with `cargo build -p PACKAGE` (cargo
/// only builds the binaries of the package under test; cargo releases its lock while
/// tests run, so this works from inside `cargo test`).
pub fn workspace_binary(package: &str) -> std::io::Result<std::path::PathBuf> {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", package])
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "cargo build -p {package} failed"
            )));
        }
        built.push(package.to_owned());
    }
    // The test binary lives in target/<profile>/deps/; binaries one level up.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| std::io::Error::other("unexpected test binary location"))?;
    Ok(profile_dir.join(package))
}
