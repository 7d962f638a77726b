//! Builds the resource, the three OTLP providers and the `tracing` subscriber.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::resource::EnvResourceDetector;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{self, EnvFilter, FilterExt as _, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{OtlpProtocol, Settings, Signal};
use crate::error_status::ErrorEventsFailSpans;
use crate::{SHUTDOWN_TIMEOUT, ServiceInfo};

/// Crates whose own events must never reach the OTLP exporters: they log about the very
/// HTTP/2 connections that carry the telemetry, which would feed back forever.
const TRANSPORT_TARGETS: [&str; 7] = [
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "reqwest",
    "tower",
    "opentelemetry",
];

/// Keeps the providers alive; flush or shut them down through it.
#[must_use = "dropping the guard without shutdown() loses the last batch of telemetry"]
pub struct TelemetryGuard {
    providers: Option<Providers>,
}

struct Providers {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
    logger: SdkLoggerProvider,
}

impl Providers {
    fn flush(&self) {
        report("flushing spans", self.tracer.force_flush());
        report("flushing logs", self.logger.force_flush());
        report("flushing metrics", self.meter.force_flush());
    }

    /// Shuts the three providers down at once, each with [`SHUTDOWN_TIMEOUT`]: a shutdown
    /// exports what is buffered first, so no `force_flush` (which has no timeout) comes
    /// before it, and with the collector down the whole takes at most one timeout, not three.
    fn shutdown(self) {
        let Providers {
            tracer,
            meter,
            logger,
        } = self;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                report(
                    "shutting down the tracer provider",
                    tracer.shutdown_with_timeout(SHUTDOWN_TIMEOUT),
                );
            });
            scope.spawn(|| {
                report(
                    "shutting down the logger provider",
                    logger.shutdown_with_timeout(SHUTDOWN_TIMEOUT),
                );
            });
            report(
                "shutting down the meter provider",
                meter.shutdown_with_timeout(SHUTDOWN_TIMEOUT),
            );
        });
    }
}

/// Export problems go straight to stderr: logging them through `tracing` would hand them
/// to the very exporter that just failed.
fn report(what: &str, result: opentelemetry_sdk::error::OTelSdkResult) {
    if let Err(err) = result {
        eprintln!("telemetry: {what} failed: {err}");
    }
}

impl TelemetryGuard {
    /// Whether providers were installed (false when `OTEL_SDK_DISABLED=true`).
    pub fn is_enabled(&self) -> bool {
        self.providers.is_some()
    }

    /// Blocking `force_flush` of spans, logs and metrics: the Lambda calls it at the end of
    /// every invocation. Do not call it from a current-thread runtime's thread with the gRPC
    /// exporter (it blocks on an export that needs that thread); use http/protobuf there or
    /// call it via `spawn_blocking`.
    pub fn flush(&self) {
        if let Some(providers) = &self.providers {
            providers.flush();
        }
    }

    /// Flushes and shuts down every provider, off the async threads (the exporters block on
    /// their own runtime work). Call it after the server stopped.
    pub async fn shutdown(self) {
        if let Some(providers) = self.providers {
            let joined = tokio::task::spawn_blocking(move || providers.shutdown()).await;
            if let Err(err) = joined {
                eprintln!("telemetry: shutdown task failed: {err}");
            }
        }
    }
}

pub(crate) fn init(info: ServiceInfo) -> anyhow::Result<TelemetryGuard> {
    let settings = Settings::from_env()?;
    global::set_text_map_propagator(opentelemetry::propagation::TextMapCompositePropagator::new(
        vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ],
    ));

    let fmt_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(log_filter());

    if settings.disabled {
        tracing_subscriber::registry()
            .with(fmt_layer)
            .try_init()
            .context("a global tracing subscriber is already installed")?;
        tracing::info!(
            service = info.name,
            "OTEL_SDK_DISABLED=true: telemetry export is off"
        );
        return Ok(TelemetryGuard { providers: None });
    }

    let resource = build_resource(info);
    let providers = build_providers(&settings, resource)?;
    global::set_tracer_provider(providers.tracer.clone());
    global::set_meter_provider(providers.meter.clone());

    // Events go to the logs signal only (see the crate doc): the span layer sees spans, and
    // ErrorEventsFailSpans keeps what it did with error events, marking their span failed.
    // busy_ns/idle_ns (a clock read on every poll of every instrumented future), thread
    // name and id, and the module path as `target` are not semantic conventions, and a
    // learner reading a span has no use for them; code.* locations stay.
    let span_layer = tracing_opentelemetry::layer()
        .with_tracer(providers.tracer.tracer(info.name))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_target(false)
        .with_filter(span_filter().and(filter::filter_fn(|meta| meta.is_span())));
    let log_bridge =
        OpenTelemetryTracingBridge::new(&providers.logger).with_filter(bridge_filter());

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(span_layer)
        .with(ErrorEventsFailSpans::default().with_filter(span_filter()))
        .with(log_bridge)
        .try_init()
        .context("a global tracing subscriber is already installed")?;

    tracing::info!(
        service = info.name,
        protocol = ?settings.protocol,
        traces_endpoint = %settings.endpoint(Signal::Traces),
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        providers: Some(providers),
    })
}

/// `RUST_LOG`, default `info`.
fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Spans are exported at info and above whatever `RUST_LOG` says: turning the console quiet
/// must not make traces disappear.
fn span_filter() -> Targets {
    TRANSPORT_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::INFO),
        |targets, target| targets.with_target(*target, LevelFilter::OFF),
    )
}

/// The log bridge follows `RUST_LOG` but never the transport crates.
fn bridge_filter() -> EnvFilter {
    TRANSPORT_TARGETS
        .iter()
        .fold(log_filter(), |filter, target| {
            filter.add_directive(
                format!("{target}=off")
                    .parse()
                    .expect("a crate name followed by =off is a valid directive"),
            )
        })
}

/// service.name: `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else
/// the caller's name. service.instance.id and deployment.environment.name get defaults
/// (a random uuid, "lab") unless `OTEL_RESOURCE_ATTRIBUTES` gives them.
fn build_resource(info: ServiceInfo) -> Resource {
    let from_env = Resource::builder_empty()
        .with_detector(Box::new(EnvResourceDetector::new()))
        .build();
    let env_has = |key: &'static str| from_env.get(&opentelemetry::Key::from_static_str(key));
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| env_has("service.name").map(|v| v.to_string()))
        .unwrap_or_else(|| info.name.to_owned());

    let mut defaults = Vec::new();
    if env_has("service.version").is_none() {
        defaults.push(KeyValue::new("service.version", info.version));
    }
    if env_has("service.instance.id").is_none() {
        defaults.push(KeyValue::new(
            "service.instance.id",
            uuid::Uuid::new_v4().to_string(),
        ));
    }
    if env_has("deployment.environment.name").is_none() {
        defaults.push(KeyValue::new("deployment.environment.name", "lab"));
    }
    Resource::builder()
        .with_service_name(service_name)
        .with_attributes(defaults)
        .build()
}

fn metric_exporter(
    settings: &Settings,
) -> Result<MetricExporter, opentelemetry_otlp::ExporterBuildError> {
    match settings.protocol {
        OtlpProtocol::Grpc => MetricExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint(Signal::Metrics))
            .build(),
        OtlpProtocol::HttpProtobuf => MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.endpoint(Signal::Metrics))
            .build(),
    }
}

/// A meter provider of its own, not installed globally, reporting as `service_name` with
/// `attributes` (plus a fresh `service.instance.id` and `deployment.environment.name=lab`),
/// exporting where the `OTEL_EXPORTER_OTLP_*` variables say, every
/// `OTEL_METRIC_EXPORT_INTERVAL`. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are not
/// read: this is for a process that measures something other than itself (the Lambda
/// emulator reporting on the queue it polls, while its environment describes the
/// function). `None` when `OTEL_SDK_DISABLED=true`. Shut it down when done.
pub fn standalone_meter_provider(
    service_name: &str,
    attributes: Vec<KeyValue>,
) -> anyhow::Result<Option<SdkMeterProvider>> {
    let settings = Settings::from_env()?;
    if settings.disabled {
        return Ok(None);
    }
    let resource = Resource::builder_empty()
        .with_service_name(service_name.to_owned())
        .with_attributes(attributes)
        .with_attributes([
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
            KeyValue::new("deployment.environment.name", "lab"),
        ])
        .build();
    Ok(Some(
        SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                PeriodicReader::builder(
                    metric_exporter(&settings).context("building the OTLP metric exporter")?,
                )
                .with_interval(settings.metric_interval)
                .build(),
            )
            .build(),
    ))
}

fn build_providers(settings: &Settings, resource: Resource) -> anyhow::Result<Providers> {
    let (spans, metrics, logs) = match settings.protocol {
        OtlpProtocol::Grpc => (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(settings.endpoint(Signal::Traces))
                .build(),
            metric_exporter(settings),
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(settings.endpoint(Signal::Logs))
                .build(),
        ),
        OtlpProtocol::HttpProtobuf => (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(settings.endpoint(Signal::Traces))
                .build(),
            metric_exporter(settings),
            LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(settings.endpoint(Signal::Logs))
                .build(),
        ),
    };
    let span_processor =
        BatchSpanProcessor::builder(spans.context("building the OTLP span exporter")?)
            .with_batch_config(span_batch_config())
            .build();
    let tracer = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(span_processor)
        .build();
    let meter = SdkMeterProvider::builder()
        .with_resource(resource.clone())
        .with_reader(
            PeriodicReader::builder(metrics.context("building the OTLP metric exporter")?)
                .with_interval(settings.metric_interval)
                .build(),
        )
        .build();
    let log_processor = BatchLogProcessor::builder(logs.context("building the OTLP log exporter")?)
        .with_batch_config(log_batch_config())
        .build();
    let logger = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(log_processor)
        .build();
    Ok(Providers {
        tracer,
        meter,
        logger,
    })
}

/// Spans and log records waiting for export, unless `OTEL_BSP/BLRP_MAX_QUEUE_SIZE` say
/// otherwise. The SDK's 2048 drops spans as soon as a service pinned to one core answers a
/// few thousand requests a second (measured: a quarter of inventory-service's spans lost at
/// 9,000 requests/s, `make bench`): the export thread gets the core too late. 16384 records
/// are a few MiB at most.
const QUEUE_SIZE: usize = 16_384;

/// Records per export request, unless `OTEL_BSP/BLRP_MAX_EXPORT_BATCH_SIZE` say otherwise.
/// The SDK exports one batch at a time and waits for the answer, so what it can send per
/// second is the batch size over the round trip; with the SDK's 512, inventory-service at
/// 18,000 requests/s on one core (the answer waits for that busy core) filled even the larger
/// queue and dropped spans. 2048 server spans are about 1.5 MB, within the 4 MiB a collector
/// accepts by default, and fewer requests cost less per record.
const EXPORT_BATCH_SIZE: usize = 2048;

fn span_batch_config() -> opentelemetry_sdk::trace::BatchConfig {
    let mut builder = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        builder = builder.with_max_queue_size(QUEUE_SIZE);
    }
    if std::env::var_os("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
        builder = builder.with_max_export_batch_size(EXPORT_BATCH_SIZE);
    }
    builder.build()
}

fn log_batch_config() -> opentelemetry_sdk::logs::BatchConfig {
    let mut builder = opentelemetry_sdk::logs::BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BLRP_MAX_QUEUE_SIZE").is_none() {
        builder = builder.with_max_queue_size(QUEUE_SIZE);
    }
    if std::env::var_os("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE").is_none() {
        builder = builder.with_max_export_batch_size(EXPORT_BATCH_SIZE);
    }
    builder.build()
}
