//! Every default of every component, next to the Go collector's (core v0.159, contrib
//! v0.15x–0.160, Jaeger v2.20, read 2026-12; the Go source of each is named). A value that
//! differs on purpose is asserted as ours, with Go's and the reason beside it, and listed
//! in the README; any other change to a default fails here.

use collector::config::Config;
use collector::config::tls::TlsClientConfig;
use collector::connectors::spanmetrics::SpanMetricsConfig;
use collector::exporters::debug::DebugConfig;
use collector::exporters::file::{FileConfig, RotationConfig};
use collector::exporters::helper::queue::{QueueConfig, RetryConfig};
use collector::exporters::loadbalancing::ProtocolConfig;
use collector::exporters::loki::LokiConfig;
use collector::exporters::otlp::{GrpcExporterConfig, HttpExporterConfig};
use collector::exporters::prometheus::PrometheusConfig;
use collector::extensions::bearertokenauth::BearerTokenConfig;
use collector::extensions::file_storage::FileStorageConfig;
use collector::extensions::health_check::HealthCheckConfig;
use collector::processors::batch::BatchConfig;
use collector::processors::filter::FilterConfig;
use collector::processors::memory_limiter::MemoryLimiterConfig;
use collector::processors::probabilistic_sampler::SamplerConfig;
use collector::processors::tail_sampling::TailSamplingConfig;
use collector::receivers::otlp::{GrpcConfig, HttpConfig};
use std::time::Duration;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn otlp_receiver() {
    // receiver/otlpreceiver/factory.go createDefaultConfig: localhost:4317 / localhost:4318
    // (we write 127.0.0.1: the same loopback, named without a resolver); gRPC's own 4 MiB
    // message limit; confighttp's 20 MiB body limit; the /v1/* paths.
    let grpc = GrpcConfig::default();
    assert_eq!(grpc.endpoint, "127.0.0.1:4317");
    assert_eq!(grpc.max_recv_msg_size_mib, 4);
    assert!(grpc.tls.is_none() && grpc.auth.is_none());
    let http = HttpConfig::default();
    assert_eq!(http.endpoint, "127.0.0.1:4318");
    assert_eq!(http.max_request_body_size, 20 * 1024 * 1024);
    assert_eq!(
        (
            http.traces_url_path.as_str(),
            http.metrics_url_path.as_str(),
            http.logs_url_path.as_str()
        ),
        ("/v1/traces", "/v1/metrics", "/v1/logs")
    );
    assert!(http.cors.is_none() && http.tls.is_none() && http.auth.is_none());
}

#[test]
fn processors() {
    // processor/batchprocessor/factory.go: 8192 items, no max, 200ms.
    let batch = BatchConfig::default();
    assert_eq!(
        (
            batch.send_batch_size,
            batch.send_batch_max_size,
            batch.timeout.0
        ),
        (8192, 0, Duration::from_millis(200))
    );

    // processor/memorylimiterprocessor: limits 0 (one of them is required). Go has no
    // default check_interval (it must be set); ours is 1s, the value every Go example uses.
    let limiter = MemoryLimiterConfig::default();
    assert_eq!(limiter.check_interval.0, secs(1));
    assert_eq!(
        (
            limiter.limit_mib,
            limiter.spike_limit_mib,
            limiter.limit_percentage,
            limiter.spike_limit_percentage
        ),
        (0, 0, 0, 0)
    );

    // contrib probabilisticsamplerprocessor/factory.go: 0%, seed 0, fail closed, precision
    // 4, attribute source traceID; an unset mode is hash_seed (sampler_mode.go defaultMode).
    let sampler = SamplerConfig::default();
    assert_eq!(sampler.sampling_percentage, 0.0);
    assert_eq!(sampler.hash_seed, 0);
    assert!(
        sampler.mode.is_none(),
        "unset: resolved to hash_seed when built"
    );
    assert!(sampler.fail_closed);
    assert_eq!(sampler.sampling_precision, 4);
    assert!(sampler.from_attribute.is_empty() && sampler.sampling_priority.is_empty());

    // contrib filterprocessor: error_mode propagate, no conditions.
    let filter = FilterConfig::default();
    assert!(filter.traces.span.is_empty() && filter.traces.spanevent.is_empty());
    assert!(filter.metrics.metric.is_empty() && filter.metrics.datapoint.is_empty());
    assert!(filter.logs.log_record.is_empty());

    // contrib tailsamplingprocessor/factory.go: 30s, 50000 traces, rate hint 0.
    let tail = TailSamplingConfig::default();
    assert_eq!(
        (
            tail.decision_wait.0,
            tail.num_traces,
            tail.expected_new_traces_per_sec
        ),
        (secs(30), 50_000, 0)
    );
}

#[test]
fn exporter_helper_queue_and_retry() {
    // exporter/exporterhelper: queue on, 10 consumers, 1000 requests, no blocking, memory;
    // configretry.NewDefaultBackOffConfig: 5s, 30s, ×1.5, ±0.5, 5m.
    let queue = QueueConfig::default();
    assert!(queue.enabled && !queue.block_on_overflow && queue.storage.is_none());
    assert_eq!((queue.num_consumers, queue.queue_size), (10, 1000));
    assert_eq!(format!("{:?}", queue.sizer), "Requests");
    let retry = RetryConfig::default();
    assert!(retry.enabled);
    assert_eq!(
        (
            retry.initial_interval.0,
            retry.max_interval.0,
            retry.max_elapsed_time.0
        ),
        (secs(5), secs(30), secs(300))
    );
    assert_eq!((retry.multiplier, retry.randomization_factor), (1.5, 0.5));
}

#[test]
fn otlp_exporters() {
    // exporter/otlpexporter/factory.go: gzip, 5s (exporterhelper timeout), no TLS changes.
    let grpc = GrpcExporterConfig::default();
    assert!(grpc.endpoint.is_empty() && grpc.headers.is_empty() && grpc.auth.is_none());
    assert_eq!(
        (grpc.compression.as_str(), grpc.timeout.0),
        ("gzip", secs(5))
    );
    assert_tls_default(&grpc.tls);
    // exporter/otlphttpexporter/factory.go: gzip, proto, 30s (confighttp client timeout).
    let http = HttpExporterConfig::default();
    assert!(http.endpoint.is_empty() && http.headers.is_empty());
    assert!(
        http.traces_endpoint.is_none()
            && http.metrics_endpoint.is_none()
            && http.logs_endpoint.is_none()
    );
    assert_eq!(
        (
            http.compression.as_str(),
            http.encoding.as_str(),
            http.timeout.0
        ),
        ("gzip", "proto", secs(30))
    );
    assert_tls_default(&http.tls);
    // contrib loadbalancingexporter: an absent `protocol` is the otlp exporter's defaults.
    let balanced = ProtocolConfig::default().otlp;
    assert_eq!(
        (balanced.compression.as_str(), balanced.timeout.0),
        ("gzip", secs(5))
    );
    assert_tls_default(&balanced.tls);
}

fn assert_tls_default(tls: &TlsClientConfig) {
    // configtls.NewDefaultClientConfig: TLS on, verified, no files.
    assert!(!tls.insecure && !tls.insecure_skip_verify);
    assert!(tls.ca_file.is_none() && tls.cert_file.is_none() && tls.key_file.is_none());
    assert!(tls.server_name_override.is_none());
}

#[test]
fn other_exporters() {
    // contrib prometheusexporter: no namespace or labels, 5m expiration, suffixes on, no
    // timestamps, no OpenMetrics. Go has no default endpoint (it must be set); ours is
    // loopback 8889, the port every Go example uses.
    let prom = PrometheusConfig::default();
    assert_eq!(prom.endpoint, "127.0.0.1:8889");
    assert!(prom.namespace.is_empty() && prom.const_labels.is_empty());
    assert_eq!(prom.metric_expiration.0, secs(300));
    assert!(prom.add_metric_suffixes && !prom.send_timestamps && !prom.enable_open_metrics);
    assert!(!prom.resource_to_telemetry_conversion.enabled);

    // exporter/debugexporter/factory.go: basic, sampling 2 then 1.
    let debug = DebugConfig::default();
    assert_eq!(
        (
            debug.verbosity.as_str(),
            debug.sampling_initial,
            debug.sampling_thereafter
        ),
        ("basic", 2, 1)
    );

    // contrib fileexporter: no rotation unless asked; rotation 100 MB (timberjack's), 100
    // backups.
    assert!(FileConfig::default().rotation.is_none());
    let rotation = RotationConfig::default();
    assert_eq!((rotation.max_megabytes, rotation.max_backups), (100, 100));

    // contrib lokiexporter (removed from contrib in v0.131): 30s, every default label on.
    let loki = LokiConfig::default();
    assert_eq!(loki.timeout.0, secs(30));
    let labels = loki.default_labels_enabled;
    assert!(labels.exporter && labels.job && labels.instance && labels.level);
}

#[test]
fn spanmetrics_connector() {
    // contrib spanmetricsconnector/factory.go: cumulative, 60s flush, never expire,
    // namespace traces.span.metrics, explicit ms buckets, exemplars off (5 per point).
    let cfg = SpanMetricsConfig::default();
    assert!(cfg.dimensions.is_empty() && cfg.exclude_dimensions.is_empty());
    assert_eq!(
        cfg.aggregation_temporality,
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    assert_eq!(
        (cfg.metrics_flush_interval.0, cfg.metrics_expiration.0),
        (secs(60), secs(0))
    );
    assert_eq!(cfg.namespace, "traces.span.metrics");
    assert_eq!(cfg.aggregation_cardinality_limit, 0);
    assert!(!cfg.histogram.disable);
    assert!(!cfg.exemplars.enabled);
    assert_eq!(cfg.exemplars.max_per_data_point, 5);
    assert!(!cfg.add_resource_attributes);
}

#[test]
fn extensions() {
    // contrib healthcheckextension: localhost:13133 (127.0.0.1 here, the same loopback),
    // path /, pipeline check off, 5m. `reload` is ours (not in Go): off.
    let health = HealthCheckConfig::default();
    assert_eq!(
        (health.endpoint.as_str(), health.path.as_str()),
        ("127.0.0.1:13133", "/")
    );
    assert!(!health.check_collector_pipeline.enabled);
    assert_eq!(health.check_collector_pipeline.interval.0, secs(300));
    assert!(!health.reload);

    // contrib filestorage: fsync off. Differs on purpose: Go defaults the directory to
    // /var/lib/otelcol/file_storage and does not create it; ours must be named (a lab
    // writes beside itself) and is created.
    let storage = FileStorageConfig::default();
    assert!(!storage.fsync);
    assert!(storage.directory.is_empty() && storage.create_directory);

    // contrib bearertokenauthextension: scheme Bearer.
    assert_eq!(BearerTokenConfig::default().scheme, "Bearer");
}

#[test]
fn service_telemetry() {
    // service/telemetry: metrics level normal on the Prometheus reader at localhost:8888
    // (127.0.0.1 here); logs level info (the --log-level default when the config has none).
    let cfg = Config::default();
    assert_eq!(cfg.telemetry.metrics.level, "normal");
    assert_eq!(cfg.telemetry.metrics.address, "127.0.0.1:8888");
    assert!(cfg.telemetry.logs.level.is_none());
}
