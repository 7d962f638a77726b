use super::*;
use crate::config::Node;
use crate::pdata::attributes;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar,
    metric::Data, number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::Duration;

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            attributes::string_kv("service.name", "order-service"),
            attributes::string_kv("service.namespace", "shop"),
            attributes::string_kv("service.instance.id", "pod-1"),
            attributes::string_kv("k8s.pod.name", "order-7d9"),
        ],
        ..Default::default()
    })
}

fn int_point(v: i64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

fn sample_metrics(temporality: AggregationTemporality) -> Vec<ResourceMetrics> {
    let route = || {
        vec![
            attributes::string_kv("http.route", "/orders"),
            attributes::string_kv("http.request.method", "POST"),
        ]
    };
    let metrics = vec![
        Metric {
            name: "traces.span.metrics.calls".into(),
            description: "Calls".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    exemplars: vec![Exemplar {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        value: Some(exemplar::Value::AsInt(1)),
                        ..Default::default()
                    }],
                    ..int_point(3, vec![attributes::string_kv("span.name", "POST /orders")])
                }],
                aggregation_temporality: temporality as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "http.server.request.duration".into(),
            unit: "s".into(),
            description: "Duration of HTTP server requests.".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: route(),
                    count: 3,
                    sum: Some(0.35),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![0.1, 0.25],
                    exemplars: vec![Exemplar {
                        trace_id: vec![0x11; 16],
                        span_id: vec![0x22; 8],
                        value: Some(exemplar::Value::AsDouble(0.2)),
                        time_unix_nano: 1_700_000_000_500_000_000,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: temporality as i32,
            })),
            ..Default::default()
        },
        Metric {
            name: "db.client.connections.usage".into(),
            unit: "{connection}".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![int_point(4, vec![])],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: false,
            })),
            ..Default::default()
        },
        Metric {
            name: "system.cpu.utilization".into(),
            unit: "1".into(),
            description: "CPU \"busy\" share\nper core".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsDouble(0.25)),
                    ..int_point(0, vec![attributes::string_kv("cpu", "0")])
                }],
            })),
            ..Default::default()
        },
        Metric {
            name: "rpc.latency".into(),
            unit: "ms".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 10,
                    sum: 55.0,
                    quantile_values: vec![
                        summary_data_point::ValueAtQuantile {
                            quantile: 0.5,
                            value: 4.0,
                        },
                        summary_data_point::ValueAtQuantile {
                            quantile: 0.99,
                            value: 12.5,
                        },
                    ],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        },
    ];
    vec![ResourceMetrics {
        resource: resource(),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "order-service".into(),
                version: "1.2.0".into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn settings() -> Settings {
    Settings {
        namespace: String::new(),
        const_labels: Vec::new(),
        resource_to_labels: false,
        add_suffixes: true,
        expiration: Duration::from_secs(300),
    }
}

fn rendered(settings: &Settings, batches: &[Vec<ResourceMetrics>], open_metrics: bool) -> String {
    let mut store = Store::default();
    for b in batches {
        store.ingest(settings, b);
    }
    store.render(open_metrics, false)
}

const IDENTITY: &str = r#"instance="pod-1",job="shop/order-service",otel_scope_name="order-service",otel_scope_version="1.2.0""#;

#[test]
fn text_exposition_follows_the_compatibility_spec() {
    let text = rendered(
        &settings(),
        &[sample_metrics(AggregationTemporality::Cumulative)],
        false,
    );
    let expect = [
        "# TYPE traces_span_metrics_calls_total counter".to_string(),
        format!("traces_span_metrics_calls_total{{{IDENTITY},span_name=\"POST /orders\"}} 3"),
        "# HELP http_server_request_duration_seconds Duration of HTTP server requests.".into(),
        "# TYPE http_server_request_duration_seconds histogram".into(),
        format!(
            "http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_route=\"/orders\",{IDENTITY},le=\"0.1\"}} 1"
        ),
        format!(
            "http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_route=\"/orders\",{IDENTITY},le=\"0.25\"}} 3"
        ),
        format!(
            "http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_route=\"/orders\",{IDENTITY},le=\"+Inf\"}} 3"
        ),
        format!(
            "http_server_request_duration_seconds_sum{{http_request_method=\"POST\",http_route=\"/orders\",{IDENTITY}}} 0.35"
        ),
        format!(
            "http_server_request_duration_seconds_count{{http_request_method=\"POST\",http_route=\"/orders\",{IDENTITY}}} 3"
        ),
        "# TYPE db_client_connections_usage gauge".into(),
        "# HELP system_cpu_utilization_ratio CPU \"busy\" share\\nper core".into(),
        format!("system_cpu_utilization_ratio{{cpu=\"0\",{IDENTITY}}} 0.25"),
        "# TYPE rpc_latency_milliseconds summary".into(),
        format!("rpc_latency_milliseconds{{{IDENTITY},quantile=\"0.99\"}} 12.5"),
        format!("rpc_latency_milliseconds_count{{{IDENTITY}}} 10"),
        "# TYPE target_info gauge".into(),
        r#"target_info{instance="pod-1",job="shop/order-service",k8s_pod_name="order-7d9"} 1"#
            .into(),
    ];
    for line in expect {
        assert!(
            text.lines().any(|l| l == line),
            "missing line\n{line}\nin\n{text}"
        );
    }
    assert!(!text.contains(" # {"), "no exemplars in text 0.0.4");
    assert!(!text.contains("# EOF"));
}

#[test]
fn delta_points_accumulate_into_cumulative_series() {
    let delta = sample_metrics(AggregationTemporality::Delta);
    let text = rendered(&settings(), &[delta.clone(), delta], false);
    assert!(
        text.contains("} 6\n") && text.contains("traces_span_metrics_calls_total{"),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("http_server_request_duration_seconds_count{") && l.ends_with(" 6")
        ),
        "{text}"
    );
    let cumulative = sample_metrics(AggregationTemporality::Cumulative);
    let text = rendered(&settings(), &[cumulative.clone(), cumulative], false);
    assert!(
        text.lines()
            .any(|l| l.starts_with("traces_span_metrics_calls_total{") && l.ends_with(" 3")),
        "{text}"
    );
}

#[test]
fn namespace_const_labels_and_resource_attributes_as_labels() {
    let s = Settings {
        namespace: "lab".into(),
        const_labels: vec![("tier".into(), "gateway".into())],
        resource_to_labels: true,
        ..settings()
    };
    let text = rendered(
        &s,
        &[sample_metrics(AggregationTemporality::Cumulative)],
        false,
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("lab_traces_span_metrics_calls_total{"))
        .expect(&text);
    for label in [
        "k8s_pod_name=\"order-7d9\"",
        "service_name=\"order-service\"",
        "tier=\"gateway\"",
        "job=\"shop/order-service\"",
    ] {
        assert!(line.contains(label), "{label} missing in {line}");
    }
}

#[test]
fn open_metrics_carries_exemplars_and_ends_with_eof() {
    let text = rendered(
        &settings(),
        &[sample_metrics(AggregationTemporality::Cumulative)],
        true,
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE traces_span_metrics_calls counter\n"),
        "{text}"
    );
    let counter = text
        .lines()
        .find(|l| l.starts_with("traces_span_metrics_calls_total{"))
        .unwrap();
    assert!(
        counter.ends_with(&format!(
            " 3 # {{trace_id=\"{}\",span_id=\"{}\"}} 1",
            "ab".repeat(16),
            "cd".repeat(8)
        )),
        "{counter}"
    );
    let bucket = text.lines().find(|l| l.contains("le=\"0.25\"")).unwrap();
    assert!(
        bucket.ends_with(&format!(
            " 3 # {{trace_id=\"{}\",span_id=\"{}\"}} 0.2 1700000000.5",
            "11".repeat(16),
            "22".repeat(8)
        )),
        "{bucket}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("system_cpu") && l.contains(" # {")),
        "no exemplars on gauges"
    );
}

#[test]
fn series_not_updated_within_metric_expiration_are_dropped() {
    let mut store = Store::default();
    store.ingest(
        &settings(),
        &sample_metrics(AggregationTemporality::Cumulative),
    );
    let before = store.series_count();
    store.expire(Duration::from_secs(3600));
    assert_eq!(store.series_count(), before);
    store.expire(Duration::ZERO);
    assert_eq!(store.series_count(), 0);
    assert_eq!(store.render(false, false), "");
}

#[test]
fn promtool_accepts_the_exposition() {
    let text = rendered(
        &settings(),
        &[sample_metrics(AggregationTemporality::Cumulative)],
        false,
    );
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = child
        .unwrap_or_else(|e| panic!("promtool is not runnable ({e}): apt-get install prometheus"));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 1 is a parse error; 3 is lint findings. The only finding we accept is the one
    // the OTel naming itself causes (`_milliseconds`, as the Go exporter names it too).
    assert_ne!(
        out.status.code(),
        Some(1),
        "promtool could not parse:\n{report}\n{text}"
    );
    for finding in report.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            finding.contains("use base unit \"seconds\""),
            "promtool lint: {finding}\n{text}"
        );
    }
}

async fn get(url: &str, accept: Option<&str>) -> (String, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success());
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn serves_scrapes_with_negotiated_content_type_and_stops_on_shutdown() {
    let cfg = PrometheusConfig {
        endpoint: "127.0.0.1:0".into(),
        enable_open_metrics: true,
        ..Default::default()
    };
    let exporter =
        PrometheusExporter::start(&cfg, Counter::default(), &Default::default()).unwrap();
    exporter
        .consume(Batch::Metrics(sample_metrics(
            AggregationTemporality::Cumulative,
        )))
        .await
        .unwrap();
    let base = format!("http://{}", exporter.local_addr());

    let (ct, body) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(ct, TEXT_CONTENT_TYPE);
    assert!(body.contains("traces_span_metrics_calls_total{"), "{body}");

    let (ct, body) = get(
        &format!("{base}/"),
        Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
    )
    .await;
    assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
    assert!(body.ends_with("# EOF\n"));

    // The port is taken while it runs: a second exporter fails at build.
    let clash = PrometheusConfig {
        endpoint: exporter.local_addr().to_string(),
        ..Default::default()
    };
    let err = PrometheusExporter::start(&clash, Counter::default(), &Default::default())
        .err()
        .expect("port in use");
    assert!(err.to_string().contains("cannot listen on"), "{err}");

    exporter.shutdown().await;
    assert!(
        reqwest::get(format!("{base}/metrics")).await.is_err(),
        "server stopped"
    );
}

#[test]
fn config_validation() {
    let node = Node::parse(
        "t.yaml",
        "endpoint: nowhere\nconst_labels: {\"bad-label\": x}\n",
    )
    .unwrap();
    let mut errors = crate::config::Errors::default();
    assert!(
        registry::check::<PrometheusConfig>(&node, "exporters::prometheus", &mut errors).is_none()
    );
    let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "exporters::prometheus::endpoint",
            "exporters::prometheus::const_labels"
        ]
    );
    let node = Node::parse(
        "t.yaml",
        "endpoint: \"0.0.0.0:8889\"\nresource_to_telemetry_conversion:\n  enabled: true\n",
    )
    .unwrap();
    let cfg: PrometheusConfig = registry::parse(&node, "exporters::prometheus").unwrap();
    assert!(cfg.resource_to_telemetry_conversion.enabled);
    assert_eq!(cfg.metric_expiration, GoDuration::secs(300));
}
