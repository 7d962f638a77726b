//! The `sqlite` trace store: traces and their log records survive the gateway being killed
//! with SIGKILL and started again on the same file, as the lab's gateway is after every
//! rebuild.

mod common;
mod jaeger_fixture;

use common::*;
use jaeger_fixture::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn start(db: &str) -> (Collector, u16, u16) {
    let (http, health, metrics, query) = (free_port(), free_port(), free_port(), free_port());
    let mut c = Collector::start(&sqlite_config(db, http, health, metrics, query));
    c.wait_healthy(health).await;
    (c, http, query)
}

async fn trace(query: u16, id: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://127.0.0.1:{query}/api/traces/{id}"))
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn traces_and_logs_survive_sigkill_and_restart() {
    let dir = temp_dir("jaeger-persist");
    let db = dir.join("state").join("traces.db");
    let db = db.to_str().unwrap();

    let (mut first, http, query) = start(db).await;
    for body in requests(now_ns() - 60_000_000_000) {
        post_otlp(http, "/v1/traces", &body).await;
    }
    post_otlp(
        http,
        "/v1/logs",
        &json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "order-service"}}]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": (now_ns() - 59_000_000_000).to_string(), "severityText": "INFO",
                "body": {"stringValue": "order received"},
                "traceId": CHECKOUT, "spanId": "a000000000000001"
            }]}]
        }]}),
    )
    .await;
    let (status, before) = trace(query, CHECKOUT).await;
    assert_eq!(status, 200);
    let spans_before = before["data"][0]["spans"].as_array().unwrap().len();
    assert_eq!(spans_before, 6);
    // Past the 200 ms commit interval, then no chance to shut down cleanly.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill_hard();

    let (_second, _, query) = start(db).await;
    let (status, after) = trace(query, CHECKOUT).await;
    assert_eq!(status, 200, "the trace is gone after the restart: {after}");
    let spans = after["data"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), spans_before);
    let root = spans
        .iter()
        .find(|s| s["spanID"] == "a000000000000001")
        .unwrap();
    assert!(
        root["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["fields"][0]["value"] == "order received"),
        "the log record came back on its span: {root}"
    );
    for id in [LOOKUP, LISTING] {
        assert_eq!(trace(query, id).await.0, 200, "trace {id}");
    }
    let services: Value = reqwest::get(format!("http://127.0.0.1:{query}/api/services"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(services["total"], 3, "{services}");
    let _ = std::fs::remove_dir_all(&dir);
}
