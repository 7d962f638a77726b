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
//! Spans are written with `tracing` (`tracing::info_span!` with `otel.kind`/`otel.name`
//! fields); metrics with the OpenTelemetry API through [`opentelemetry::global::meter`].

mod config;
pub mod db;
pub mod faults;
pub mod http_client;
pub mod http_server;
pub mod propagation;
mod providers;
#[cfg(feature = "testing")]
pub mod testing;

use std::time::Duration;

pub use config::OtlpProtocol;
pub use providers::TelemetryGuard;

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
    let guard = init(info)?;
    let result = serve(Box::pin(shutdown_signal())).await;
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

/// Resolves when the process receives SIGTERM or Ctrl-C; pass it to
/// `axum::serve(..).with_graceful_shutdown(..)` and then call [`TelemetryGuard::shutdown`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                futures::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Marks the current span as failed the way the semantic conventions ask: status Error
/// with `error`'s message, and an `exception` event carrying `exception.type` and
/// `exception.message`. Call it where a request fails on the server's side (a 5xx or a
/// failed dependency), not for a client's mistake.
pub fn record_error<E: std::error::Error + ?Sized>(error: &E) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::Span::current();
    let message = error.to_string();
    span.add_event(
        "exception",
        vec![
            opentelemetry::KeyValue::new("exception.type", std::any::type_name::<E>()),
            opentelemetry::KeyValue::new("exception.message", message.clone()),
        ],
    );
    span.set_status(opentelemetry::trace::Status::error(message));
}

/// How long [`TelemetryGuard::shutdown`] waits for the exporters before giving up, so a
/// collector that is down cannot keep a stopping service alive.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
