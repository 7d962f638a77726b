//! Nothing acknowledged is lost: data the collector said "accepted" for survives a SIGKILL
//! when the exporter's queue is on disk.

mod common;

use common::*;
use std::collections::HashSet;

fn config(
    http: u16,
    health: u16,
    metrics: u16,
    backend_port: u16,
    dir: &std::path::Path,
) -> String {
    format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
  file_storage:
    directory: {dir}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  batch: {{timeout: 100ms, send_batch_size: 500, wait_for_result: true}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend_port}
    tls: {{insecure: true}}
    timeout: 1s
    sending_queue:
      storage: file_storage
      queue_size: 5000
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 300ms
      max_elapsed_time: 0s
service:
  extensions: [health_check, file_storage]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp]}}
"#,
        dir = dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acknowledging_loses_nothing_with_a_persistent_queue() {
    let dir = temp_dir("persistent-queue");
    let backend_port = free_port(); // nothing listens there yet: the backend is down
    let (http, health, metrics) = (free_port(), free_port(), free_port());
    let cfg = config(http, health, metrics, backend_port, &dir.join("queues"));

    let mut first = Collector::start(&cfg);
    first.wait_healthy(health).await;
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for r in 0..50u32 {
        let req = client
            .post(format!("http://127.0.0.1:{http}/v1/traces"))
            .header("content-type", "application/json")
            .body(json_spans(r * 100, 100))
            .send();
        requests.push(async move { req.await.unwrap().status() });
    }
    for status in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "acknowledged");
    }
    first.kill_hard();

    // The backend comes up; a new collector on the same storage delivers everything.
    let (_, rec) = backend_on(backend_port).await;
    let mut second = Collector::start(&cfg);
    second.wait_healthy(health).await;
    assert!(
        eventually(30, || rec.span_ids().iter().collect::<HashSet<_>>().len()
            >= 5000)
        .await,
        "only {} unique spans arrived:\n{}",
        rec.span_ids().iter().collect::<HashSet<_>>().len(),
        second.logs()
    );
    let unique: HashSet<String> = rec.span_ids().into_iter().collect();
    let expected: HashSet<String> = (0..5000u32).map(|i| format!("{:016x}", i + 1)).collect();
    assert_eq!(unique, expected);
    assert!(
        second
            .logs()
            .contains("recovered undelivered batches from disk"),
        "{}",
        second.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_queue_needs_its_storage_enabled() {
    let dir = temp_dir("persistent-queue-missing");
    let (http, health, metrics) = (free_port(), free_port(), free_port());
    let cfg = config(http, health, metrics, free_port(), &dir).replace(
        "extensions: [health_check, file_storage]",
        "extensions: [health_check]",
    );
    let mut c = Collector::start(&cfg);
    let status = c.child.wait().unwrap();
    assert!(!status.success());
    assert!(
        c.logs().contains(
            "exporters::otlp::sending_queue::storage: extension \"file_storage\" is not enabled"
        ),
        "{}",
        c.logs()
    );
}
