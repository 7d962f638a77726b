//! The Prometheus side for real: spans and SDK metrics in over OTLP, the collector's
//! `/metrics` page checked by `promtool`, scraped by a real Prometheus and queried in PromQL.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Fails the test, saying how to install it, unless `name` runs.
fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{name} is not installed: apt-get install prometheus");
}

const METRICS_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"order-service"}},
  {"key":"service.instance.id","value":{"stringValue":"i-1"}}]},
 "scopeMetrics":[{"scope":{"name":"telemetry"},"metrics":[{
   "name":"http.server.request.duration","unit":"s","description":"Duration of HTTP server requests.",
   "histogram":{"aggregationTemporality":2,"dataPoints":[{
     "attributes":[{"key":"http.route","value":{"stringValue":"/orders"}},{"key":"http.request.method","value":{"stringValue":"POST"}}],
     "startTimeUnixNano":"1700000000000000000","timeUnixNano":"1700000001000000000",
     "count":"10","sum":1.2,"bucketCounts":["2","5","3","0"],"explicitBounds":[0.05,0.1,0.25]}]}}]}]}]}"#;

fn spans_json(n: usize) -> String {
    let spans: Vec<String> = (0..n)
        .map(|i| {
            let status = if i % 5 == 0 { r#","status":{"code":2}"# } else { "" };
            format!(
                r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"POST /orders","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"{}"{status}}}"#,
                i + 1,
                i + 1,
                1_700_000_000_000_000_000u64 + (i as u64 + 1) * 10_000_000
            )
        })
        .collect();
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"order-service"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    )
}

async fn query(prom: u16, q: &str) -> serde_json::Value {
    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{prom}/api/v1/query"),
        &[("query", q)],
    )
    .unwrap();
    let r = reqwest::get(url).await.unwrap();
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_span_metrics_and_sdk_histograms() {
    require_tool("promtool");
    require_tool("prometheus");
    let (http, health, own, exporter) = (free_port(), free_port(), free_port(), free_port());
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
connectors:
  spanmetrics:
    metrics_flush_interval: 200ms
exporters:
  prometheus:
    endpoint: 127.0.0.1:{exporter}
    enable_open_metrics: true
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{own}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [spanmetrics]}}
    metrics: {{receivers: [otlp, spanmetrics], exporters: [prometheus]}}
"#
    ));
    c.wait_healthy(health).await;
    let client = reqwest::Client::new();
    for (path, body) in [
        ("traces", spans_json(50)),
        ("metrics", METRICS_JSON.to_string()),
    ] {
        let r = client
            .post(format!("http://127.0.0.1:{http}/v1/{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let page_url = format!("http://127.0.0.1:{exporter}/metrics");
    let mut shown = false;
    for _ in 0..100 {
        if reqwest::get(&page_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("traces_span_metrics_calls_total")
        {
            shown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "span metrics never showed up:\n{}", c.logs());

    // promtool reads the page exactly as served.
    let page = reqwest::get(&page_url).await.unwrap().text().await.unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| {
            !l.trim().is_empty()
                && !l.contains("use base unit \"seconds\" instead of \"milliseconds\"")
        })
        .map(str::to_string)
        .collect();
    assert!(complaints.is_empty(), "promtool: {complaints:?}\n{page}");

    // A real Prometheus scrapes it.
    let dir = temp_dir("prometheus");
    let prom_port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: collector\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n"),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let mut answered = (
        serde_json::Value::Null,
        serde_json::Value::Null,
        serde_json::Value::Null,
    );
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(_) = reqwest::get(format!("http://127.0.0.1:{prom_port}/-/ready")).await else {
            continue;
        };
        answered = (
            query(prom_port, r#"sum(traces_span_metrics_calls_total{service_name="order-service",span_name="POST /orders"})"#).await,
            query(prom_port, r#"sum(traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"})"#).await,
            query(prom_port, r#"histogram_quantile(0.5, sum by (le) (http_server_request_duration_seconds_bucket{http_route="/orders"}))"#).await,
        );
        if answered.0["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            && answered.2["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break;
        }
    }
    let _ = prom.kill();
    let _ = prom.wait();
    let value = |v: &serde_json::Value| {
        v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or_else(|| panic!("no result: {v}"))
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(value(&answered.0), 50.0, "every span counted once");
    assert_eq!(value(&answered.1), 10.0, "every fifth span is an error");
    let p50 = value(&answered.2);
    assert!(
        (0.05..=0.1).contains(&p50),
        "median of the SDK histogram lies in its (0.05, 0.1] bucket: {p50}"
    );
}
