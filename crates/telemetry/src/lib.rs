//! The one place where otel-lab sets up OpenTelemetry. Every workload in the diagram
//! (order-, payment- and inventory-service, the fraud-check Lambda, the traffic generator)
//! calls [`init`] once at start: it reads the standard `OTEL_*` environment variables, builds
//! the resource, installs global tracer, meter and logger providers exporting OTLP to the
//! collector agent (or gateway), installs the W3C TraceContext + Baggage propagator, and a
//! `tracing` subscriber that prints readable text to stderr, turns `tracing` spans into
//! OpenTelemetry spans and bridges `tracing` events into OTLP logs carrying the active
//! trace and span ids. Beside it live the pieces every HTTP hop needs: the axum server
//! layer ([`http_server`]), the traced reqwest client ([`http_client`]), header
//! [`propagation`] helpers, and the shared fault injection ([`faults`]).
//!
//! Business spans are written with `tracing` (`tracing::info_span!` with
//! `otel.kind`/`otel.name` fields); metrics with the OpenTelemetry API through
//! [`opentelemetry::global::meter`].
//!
//! **What it costs.** The two spans every request makes, the server span and the
//! statement span of [`db`], are made with the OpenTelemetry API directly: as `tracing`
//! spans they cost a registry slot, a field visit per attribute in every layer (the console
//! layer formats them all) and an enter and exit on each poll, on top of the SDK span each
//! becomes; measured on inventory-service's `GET /inventory/{sku}` (`make bench`), they
//! were over a third of what telemetry added. tracing-opentelemetry activates a `tracing` span's
//! context when it is entered and starts a root `tracing` span under the current
//! OpenTelemetry context, so the two APIs nest either way; work moved to another thread keeps
//! its parent through [`spawn_blocking`].
//!
//! Every workload binary also sets [`Allocator`] (mimalloc) as its global allocator.
//! Telemetry allocates on the request's thread and frees on the exporters' (a span is built
//! where the request runs and encoded and dropped on the batch thread), which is glibc
//! malloc's worst case: its arena locks, consolidation and returned-then-refaulted pages
//! were half of what the instrumentation of a request cost (`cargo bench -p telemetry
//! --bench request`: 20.6 µs with glibc, 10.5 µs with mimalloc, the bare route 1.3 µs).
//!
//! **Log lines travel once, as OTLP log records.** A `tracing` event becomes a log record
//! carrying the trace and span id of the span it happened in, with its severity and fields;
//! it is not also copied onto the span as a span event (tracing-opentelemetry's default).
//! The OpenTelemetry project is moving events to the logs signal (span events are on their
//! way out), a log record keeps the severity and every field as a typed attribute, and
//! records outside any span are kept too; the copy cost a second encoding of every line.
//! What span events did besides, an `error!` event marking its span failed, is kept
//! (`error_status`). Exceptions recorded with [`record_error`] stay span events, as the
//! trace semantic conventions still describe them.
//!
//! **Attribute names** follow the stable semantic conventions and are the constants of
//! `opentelemetry-semantic-conventions`, in metric attributes and in `tracing` span fields
//! alike (`{ semconv::HTTP_ROUTE } = route`), so a misspelt key cannot compile. Integer
//! fields are recorded as `i64`: tracing-opentelemetry (0.34) has no unsigned visitor and
//! writes a `u16` port, a `u64` count or a `usize` length as a *string* attribute, which
//! breaks numeric queries and the conventions' types.

mod config;
pub mod db;
mod error_status;
pub mod faults;
pub mod http_client;
pub mod http_server;
pub mod messaging;
pub mod propagation;
mod providers;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

pub use config::OtlpProtocol;
/// The global allocator of every workload binary (see the crate doc on cost):
/// `#[global_allocator] static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;`
pub use mimalloc::MiMalloc as Allocator;
pub use providers::{TelemetryGuard, standalone_meter_provider};

/// Explicit histogram boundaries, in seconds, for `http.server.request.duration` and
/// `http.client.request.duration` (the HTTP semantic conventions' advice). The SDK's default
/// buckets assume milliseconds and would put every request in the first bucket.
pub const DURATION_BUCKETS_SECONDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Who is reporting: the default `service.name` (overridden by `OTEL_SERVICE_NAME`) and the
/// `service.version`. Workloads pass `env!("CARGO_PKG_NAME")` and `env!("CARGO_PKG_VERSION")`.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub version: &'static str,
}

/// Sets up telemetry for this process; see the crate documentation for what is installed.
///
/// Call it once, early, inside a multi-thread tokio runtime (the gRPC exporter needs one).
/// Environment: `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT` (default
/// `http://127.0.0.1:4317` for grpc, `http://127.0.0.1:4318` for http/protobuf, where the
/// `/v1/traces`, `/v1/metrics`, `/v1/logs` paths are appended), the per-signal
/// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` (used verbatim),
/// `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` default, or `http/protobuf`),
/// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_SDK_DISABLED=true` (no
/// providers: only the stderr log), `OTEL_METRIC_EXPORT_INTERVAL` (ms, default 5000) and
/// `RUST_LOG` (default `info`).
pub fn init(info: ServiceInfo) -> anyhow::Result<TelemetryGuard> {
    providers::init(info)
}

/// The `main` of a service binary: sets telemetry up, runs `serve` with a future that
/// resolves on SIGTERM/Ctrl-C, logs a failure, and flushes telemetry however it ended, so
/// the last spans of a stopping service still reach the collector.
pub async fn run_service<Fut>(
    info: ServiceInfo,
    serve: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
) -> anyhow::Result<()>
where
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    // Before anything else, and long before the listener answers: a SIGTERM that arrives
    // while the service starts (a pod stopped during start-up) must stop it gracefully, not
    // kill it with the default action and lose its telemetry.
    let shutdown = shutdown_signal();
    let guard = init(info)?;
    let result = serve(Box::pin(shutdown)).await;
    if let Err(err) = &result {
        tracing::error!(
            error = format!("{err:#}"),
            "{} stopped with an error",
            info.name
        );
    }
    guard.shutdown().await;
    result
}

/// A future that resolves when the process receives SIGTERM or Ctrl-C; pass it to
/// [`http_server::serve`] and then call [`TelemetryGuard::shutdown`]. The signal handlers
/// are installed when this function is called, not when the future is first polled, so
/// call it early: from then on those signals no longer kill the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let next = |stream: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match stream {
                    Ok(mut stream) => {
                        stream.recv().await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for {name}");
                        futures::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = next(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C received, shutting down"),
                () = next(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            futures::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
}

/// `tokio::task::spawn_blocking` that runs `work` in the caller's span: its `tracing` span
/// entered and its OpenTelemetry context current, so spans made on the blocking thread are
/// children of the caller's, whichever API made the caller's (the server span is made with
/// the OpenTelemetry API and is not a `tracing` span).
pub fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let span = tracing::Span::current();
    let cx = opentelemetry::Context::current();
    tokio::task::spawn_blocking(move || {
        let _attached = cx.attach();
        let _entered = span.enter();
        work()
    })
}

/// Marks the current span as failed the way the semantic conventions ask: status Error
/// with `error`'s message, and an `exception` event carrying `exception.type` and
/// `exception.message`. Call it where a request fails on the server's side (a 5xx or a
/// failed dependency), not for a client's mistake.
pub fn record_error<E: std::error::Error + ?Sized>(error: &E) {
    use opentelemetry::trace::TraceContextExt as _;
    // The current context's span: a `tracing` span's once it is entered (tracing-opentelemetry
    // activates its context), or a span made with the OpenTelemetry API, such as the server
    // span, when no `tracing` span is open.
    let cx = opentelemetry::Context::current();
    let (event, status) = exception(error);
    let span = cx.span();
    span.add_event("exception", event);
    span.set_status(status);
}

/// [`record_error`] on a span made with the OpenTelemetry API that is not (yet) current.
pub(crate) fn record_error_on<E: std::error::Error + ?Sized>(
    span: &mut impl opentelemetry::trace::Span,
    error: &E,
) {
    let (event, status) = exception(error);
    span.add_event("exception", event);
    span.set_status(status);
}

/// The `exception` event's attributes and the Error status for `error`.
fn exception<E: std::error::Error + ?Sized>(
    error: &E,
) -> (Vec<opentelemetry::KeyValue>, opentelemetry::trace::Status) {
    let message = error.to_string();
    (
        vec![
            opentelemetry::KeyValue::new("exception.type", std::any::type_name::<E>()),
            opentelemetry::KeyValue::new("exception.message", message.clone()),
        ],
        opentelemetry::trace::Status::error(message),
    )
}

/// How long [`TelemetryGuard::shutdown`] waits for the exporters before giving up, so a
/// collector that is down cannot keep a stopping service alive.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
