//! The trace explorer UI in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver`): search, open a trace, read the waterfall, open a span's details, look a
//! trace up by id, see the dependency graph. Screenshots land in the target directory
//! (`target/tmp/trace-explorer*.png`). Without Chromium the test fails, saying how to
//! install it.

mod common;
mod jaeger_fixture;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use jaeger_fixture::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Fails the test, saying how to install them, unless Chromium and chromedriver are there.
fn require_browser() {
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "chromium and chromedriver are not installed: apt-get install chromium chromium-driver"
    );
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let mut d = Driver { child, port };
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/status")).await
            && r.status() == 200
        {
            return d;
        }
        if let Ok(Some(s)) = d.child.try_wait() {
            panic!("chromedriver exited with {s}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver not ready after 20s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,1000", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// Waits for at least `n` elements matching `css`, and returns them.
async fn wait_all(c: &Client, css: &str, n: usize) -> Vec<fantoccini::elements::Element> {
    let start = Instant::now();
    loop {
        let found = c.find_all(Locator::Css(css)).await.unwrap();
        if found.len() >= n {
            return found;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let html = c.source().await.unwrap_or_default();
            panic!(
                "waited 15s for {n} × {css}, found {}; page:\n{html}",
                found.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn texts(els: &[fantoccini::elements::Element]) -> Vec<String> {
    let mut v = Vec::new();
    for e in els {
        v.push(e.text().await.unwrap().trim().to_string());
    }
    v
}

/// Screenshots go where cargo keeps test scratch files: `target/tmp/`.
fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_open_trace_and_read_a_spans_tags_in_chromium() {
    require_browser();
    let lab = start_lab().await;
    let driver = start_driver().await;
    let profile = temp_dir("chromium-profile");
    let c = browser(&driver, &profile).await;
    // Close the browser even when an assertion fails, so no Chromium outlives the test.
    let result = std::panic::AssertUnwindSafe(drive(&c, &lab))
        .catch_unwind()
        .await;
    let _ = c.close().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn drive(c: &Client, lab: &Lab) {
    // A log line written inside the payment span, as the services send it: an OTLP log
    // record with the span's ids, shown in that span's details.
    let log = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payment-service"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (now_ns() - 59_000_000_000).to_string(),
            "severityText": "WARN",
            "body": {"stringValue": "card gateway did not answer in time"},
            "traceId": CHECKOUT, "spanId": "a000000000000006"
        }]}]
    }]});
    post_otlp(lab.http, "/v1/logs", &log).await;
    // Search: the form lists the services; order-service has two traces.
    c.goto(&lab.api("/search")).await.unwrap();
    wait_all(c, "#service option", 3).await;
    let service = c.find(Locator::Css("#service")).await.unwrap();
    service.select_by_value("order-service").await.unwrap();
    wait_all(c, "#operation option", 6).await;
    c.find(Locator::Css("#search-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let results = wait_all(c, ".result", 2).await;
    assert_eq!(results.len(), 2);
    assert_eq!(wait_all(c, ".scatter circle", 2).await.len(), 2);
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("service=order-service")
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-search.png"), png).unwrap();

    // A tag search in logfmt narrows to the failing checkout.
    let tags = c.find(Locator::Css("#tags")).await.unwrap();
    tags.send_keys("error=true").await.unwrap();
    c.find(Locator::Css("#search-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let n = c.find_all(Locator::Css(".result")).await.unwrap().len();
        if n == 1
            && let Ok(h) = c.find(Locator::Css(".summary h2")).await
            && h.text().await.unwrap() == "1 trace"
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "tag search never showed 1 trace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = c.find(Locator::Css(".result")).await.unwrap();
    assert_eq!(
        result.attr("data-trace-id").await.unwrap().as_deref(),
        Some(CHECKOUT)
    );
    assert!(
        result
            .text()
            .await
            .unwrap()
            .contains("order-service: POST /orders")
    );

    // Open it: one row per span, in tree order, with the right services.
    result.click().await.unwrap();
    let rows = wait_all(c, ".span-row", 6).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/trace/{CHECKOUT}")
    );
    let services = texts(
        &c.find_all(Locator::Css(".span-row .span-service"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        services,
        [
            "order-service",
            "order-service",
            "order-service",
            "inventory-service",
            "order-service",
            "payment-service"
        ]
    );
    let names = texts(
        &c.find_all(Locator::Css(".span-row .span-name"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(names[0], "POST /orders");
    assert_eq!(names[5], "payment.authorize");
    // Three spans failed: the root, the payment call and the authorization.
    assert_eq!(
        c.find_all(Locator::Css(".span-row .err-mark"))
            .await
            .unwrap()
            .len(),
        3
    );
    let slow = c
        .find_all(Locator::Css(".span-row .slow-mark"))
        .await
        .unwrap();
    assert_eq!(slow.len(), 1);
    assert!(
        c.find(Locator::Css(
            ".span-row[data-span-id='a000000000000006'] .slow-mark"
        ))
        .await
        .is_ok(),
        "payment.authorize is marked as the slowest span"
    );
    let head = c
        .find(Locator::Css(".trace-head"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(head.contains(CHECKOUT), "{head}");
    assert!(
        head.contains("payment-service: payment.authorize"),
        "the slowest span is named: {head}"
    );

    // Collapse order_service.process_order: only the root and it stay visible.
    c.find(Locator::Css(
        ".span-row[data-span-id='a000000000000002'] .toggle",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let visible = c
        .execute(
            "return [...document.querySelectorAll('.span-row')].filter(r => r.offsetParent !== null).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(visible, 2);
    c.find(Locator::Css(
        ".span-row[data-span-id='a000000000000002'] .toggle",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();

    // Span details: tags, resource tags, the exception event, the link.
    c.find(Locator::Css(
        ".span-row[data-span-id='a000000000000006'] .span-name",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_all(c, ".span-detail .tags-table tr", 3).await;
    let keys = texts(
        &c.find_all(Locator::Css(".span-detail .tags-table td.key"))
            .await
            .unwrap(),
    )
    .await;
    let values = texts(
        &c.find_all(Locator::Css(".span-detail .tags-table td.value"))
            .await
            .unwrap(),
    )
    .await;
    let tags: Vec<(String, String)> = keys.into_iter().zip(values).collect();
    for (k, v) in [
        ("payment.card_token", "tok_visa"),
        ("payment.amount", "42.5"),
        ("span.kind", "server"),
        ("error", "true"),
        ("otel.status_description", "card gateway timeout"),
    ] {
        assert!(
            tags.contains(&(k.to_string(), v.to_string())),
            "{k}={v} not in {tags:?}"
        );
    }
    let detail = c
        .find(Locator::Css(".span-detail"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(detail.contains("cloud.platform"), "{detail}");
    assert!(detail.contains("aws_ecs"), "{detail}");
    assert!(detail.contains("exception"), "{detail}");
    assert!(detail.contains(LINKED), "{detail}");
    assert!(
        detail.contains("Logs (2)"),
        "the event and the log line: {detail}"
    );
    assert!(
        detail.contains("card gateway did not answer in time"),
        "{detail}"
    );
    assert!(detail.contains("WARN"), "{detail}");
    // The line is marked on the span's bar, and listed in the trace's logs.
    let marks = c
        .find_all(Locator::Css(
            ".span-row[data-span-id='a000000000000006'] .log-mark",
        ))
        .await
        .unwrap();
    assert_eq!(marks.len(), 2, "one tick per log line and event");
    let trace_logs = c
        .execute(
            "return document.getElementById('trace-logs').textContent",
            vec![],
        )
        .await
        .unwrap();
    let trace_logs = trace_logs.as_str().unwrap();
    assert!(
        trace_logs.contains("card gateway did not answer in time") && trace_logs.contains("WARN"),
        "{trace_logs}"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer.png"), png).unwrap();

    // The trace id box opens another trace.
    let lookup = c.find(Locator::Css("#lookup-id")).await.unwrap();
    lookup.send_keys(LOOKUP).await.unwrap();
    c.find(Locator::Css("#lookup button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let rows = c
            .find_all(Locator::Css(".span-row .span-name"))
            .await
            .unwrap();
        if rows.len() == 1 && texts(&rows).await == ["GET /orders/{id}"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "lookup never showed the trace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A 500-span trace renders one row per span; collapsing the root leaves one row.
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/traces", lab.http))
        .header("content-type", "application/json")
        .body(big_trace_request(now_ns() - 30_000_000_000).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.goto(&lab.api(&format!("/trace/{BIG}"))).await.unwrap();
    assert_eq!(wait_all(c, ".span-row", 500).await.len(), 500);
    assert_eq!(
        c.find_all(Locator::Css(".span-row .err-mark"))
            .await
            .unwrap()
            .len(),
        1
    );
    c.find(Locator::Css(".span-row[data-idx='0'] .toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let visible = c
        .execute(
            "return [...document.querySelectorAll('.span-row')].filter(r => r.offsetParent !== null).length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(visible, 1);

    // The dependency graph draws the checkout's services (and the big trace's).
    c.goto(&lab.api("/dependencies")).await.unwrap();
    let nodes = wait_all(c, ".deps .node", 8).await;
    let names = texts(&nodes).await;
    for s in ["inventory-service", "order-service", "payment-service"] {
        assert!(names.contains(&s.to_string()), "{s} not in {names:?}");
    }
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-dependencies.png"), png).unwrap();

    critical_path_and_statistics(c, lab).await;
    compare_two_traces(c, lab).await;
    monitor_tab(c, lab).await;
    log_search(c, lab).await;
    linked_traces(c, lab).await;
    survives_a_sigkill(c).await;
}

/// The asynchronous hop: an order's trace sends to the queue (a PRODUCER span), and the
/// fulfilment's trace, a root of its own, links to that send. Each trace names the other
/// (its root service and operation) and opens it in one click; the link also shows on the
/// linking span, and a search by `messaging.destination.name` finds the fulfilment.
async fn linked_traces(c: &Client, lab: &Lab) {
    const ORDER: &str = "e0000000000000000000000000000001";
    const FULFILMENT: &str = "e0000000000000000000000000000002";
    let base = now_ns() - 5_000_000_000;
    let ms = |m: u64| (base + m * 1_000_000).to_string();
    let attr = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    let body = json!({"resourceSpans": [
        {"resource": {"attributes": [attr("service.name", "order-service")]},
         "scopeSpans": [{"spans": [
            {"traceId": ORDER, "spanId": "e100000000000001", "name": "POST /orders", "kind": 2,
             "startTimeUnixNano": ms(0), "endTimeUnixNano": ms(300)},
            {"traceId": ORDER, "spanId": "e100000000000002", "parentSpanId": "e100000000000001",
             "name": "send orders", "kind": 4, "startTimeUnixNano": ms(290), "endTimeUnixNano": ms(295),
             "attributes": [attr("messaging.destination.name", "orders")]}]}]},
        {"resource": {"attributes": [attr("service.name", "fulfilment")]},
         "scopeSpans": [{"spans": [
            {"traceId": FULFILMENT, "spanId": "e200000000000001", "name": "process orders", "kind": 5,
             "startTimeUnixNano": ms(1200), "endTimeUnixNano": ms(1400),
             "attributes": [attr("messaging.destination.name", "orders")],
             "links": [{"traceId": ORDER, "spanId": "e100000000000002"}]}]}]}
    ]});
    post_otlp(lab.http, "/v1/traces", &body).await;

    // The search a learner types: the queue's consumers.
    c.goto(
        &lab.api("/search?service=fulfilment&tags=messaging.destination.name%3Dorders&lookback=1h"),
    )
    .await
    .unwrap();
    let results = wait_all(c, ".result", 1).await;
    assert!(
        results[0].text().await.unwrap().contains("process orders"),
        "the fulfilment is found by its queue"
    );

    c.goto(&lab.api(&format!("/trace/{FULFILMENT}")))
        .await
        .unwrap();
    let to = wait_all(c, "#trace-links .link-to", 1).await;
    let text = to[0].text().await.unwrap();
    assert!(
        text.contains("order-service: POST /orders") && text.contains("order-service: send orders"),
        "the link names the order's trace and the span linked to: {text}"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-links.png"), png).unwrap();
    // The link on the span itself, in its details.
    let rows = wait_all(c, ".span-row", 1).await;
    rows[0].click().await.unwrap();
    let detail = wait_all(c, ".span-detail", 1).await;
    let detail = detail[0].text().await.unwrap();
    assert!(
        detail.contains("link (FOLLOWS_FROM)") && detail.contains("order-service: POST /orders"),
        "{detail}"
    );

    // One click to the order, which knows who links to it.
    c.find(Locator::Css("#trace-links a.linked-trace"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let from = wait_all(c, "#trace-links .link-from", 1).await;
    let text = from[0].text().await.unwrap();
    assert!(
        text.contains("fulfilment: process orders"),
        "the order's trace is linked from the fulfilment: {text}"
    );
    assert!(c.current_url().await.unwrap().path().ends_with(ORDER));
    c.find(Locator::Css("#trace-links a.linking-trace"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_all(c, "#trace-links .link-to", 1).await;
    assert!(c.current_url().await.unwrap().path().ends_with(FULFILMENT));
}

/// A gateway on the disk-backed store is killed with SIGKILL and started again on the same
/// file: the explorer still opens the checkout, with its log line.
async fn survives_a_sigkill(c: &Client) {
    let dir = temp_dir("jaeger-ui-restart");
    let db = dir.join("traces.db");
    let db = db.to_str().unwrap();
    let start = |db: String| async move {
        let (http, health, metrics, query) = (free_port(), free_port(), free_port(), free_port());
        let mut collector = Collector::start(&sqlite_config(&db, http, health, metrics, query));
        collector.wait_healthy(health).await;
        (collector, http, query)
    };
    let (mut first, http, _) = start(db.to_string()).await;
    for body in requests(now_ns() - 60_000_000_000) {
        post_otlp(http, "/v1/traces", &body).await;
    }
    let log = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payment-service"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (now_ns() - 59_000_000_000).to_string(), "severityText": "WARN",
            "body": {"stringValue": "written before the gateway was killed"},
            "traceId": CHECKOUT, "spanId": "a000000000000006"
        }]}]
    }]});
    post_otlp(http, "/v1/logs", &log).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill_hard();

    let (_second, _, query) = start(db.to_string()).await;
    c.goto(&format!("http://127.0.0.1:{query}/trace/{CHECKOUT}"))
        .await
        .unwrap();
    assert_eq!(wait_all(c, ".span-row", 6).await.len(), 6);
    let logs = c
        .execute(
            "return document.getElementById('trace-logs').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        logs.as_str()
            .unwrap()
            .contains("written before the gateway was killed"),
        "{logs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Logs page finds the payment span's log line by a word of it and leads to its trace.
async fn log_search(c: &Client, lab: &Lab) {
    c.goto(&lab.api("/logs")).await.unwrap();
    let text = wait_all(c, "#l-text", 1).await.remove(0);
    text.send_keys("DID NOT ANSWER").await.unwrap();
    c.find(Locator::Css("#logs-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rows = wait_all(c, ".log-row", 1).await;
    assert_eq!(rows.len(), 1);
    let row = rows[0].text().await.unwrap();
    assert!(row.contains("card gateway did not answer in time"), "{row}");
    assert!(row.contains("WARN"), "{row}");
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-logs.png"), png).unwrap();
    c.find(Locator::Css(".log-row a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_all(c, ".span-row", 6).await;
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with(CHECKOUT), "{url}");
}

/// Twenty server calls of one operation over the last minutes, five failed, 10 to 200 ms;
/// client spans beside them are not counted. The monitor shows exactly these figures.
async fn monitor_tab(c: &Client, lab: &Lab) {
    let now = now_ns();
    let spans: Vec<serde_json::Value> = (1..=20u64)
        .flat_map(|i| {
            let start = now - (200 - i * 5) * 1_000_000_000;
            let server = serde_json::json!({
                "traceId": format!("{:032x}", 0xf000 + i), "spanId": format!("{:016x}", 0xf000 + i),
                "name": "GET /things", "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + i * 10_000_000).to_string(),
                "status": {"code": if i % 4 == 0 { 2 } else { 0 }}
            });
            let client = serde_json::json!({
                "traceId": format!("{:032x}", 0xf000 + i), "spanId": format!("{:016x}", 0xff000 + i),
                "parentSpanId": format!("{:016x}", 0xf000 + i),
                "name": "GET", "kind": 3,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 1_000_000).to_string()
            });
            [server, client]
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "monitor-service"}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    post_otlp(lab.http, "/v1/traces", &body).await;
    c.goto(&lab.api("/monitor?service=monitor-service&lookback=15m"))
        .await
        .unwrap();
    wait_all(c, ".monitor-row", 1).await;
    let rows = c
        .execute(
            "return [...document.querySelectorAll('.monitor-row')].map(r => [r.dataset.operation, ...['.m-requests', '.m-errors', '.m-p50', '.m-p95', '.m-p99'].map(s => r.querySelector(s).textContent)])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        serde_json::json!([["GET /things", "20", "25.0%", "100ms", "190ms", "200ms"]]),
        "server spans only; nearest-rank quantiles of 10, 20, ... 200 ms"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-monitor.png"), png).unwrap();
    // "errors" leads to the failed calls.
    c.find(Locator::Css(".monitor-row a[href*='error']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let results = wait_all(c, ".result", 5).await;
    assert_eq!(results.len(), 5, "the five failed calls");
}

/// Sends one trace of order-service spans: (span id, parent id, name, start ms, end ms).
async fn send_trace(lab: &Lab, trace: &str, spans: &[(&str, &str, &str, u64, u64)]) {
    let base = now_ns() - 10_000_000_000;
    let ms = |m: u64| (base + m * 1_000_000).to_string();
    let spans: Vec<serde_json::Value> = spans
        .iter()
        .map(|(id, parent, name, from, to)| {
            serde_json::json!({"traceId": trace, "spanId": id, "parentSpanId": parent,
                "name": name, "kind": 2, "startTimeUnixNano": ms(*from), "endTimeUnixNano": ms(*to)})
        })
        .collect();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "order-service"}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    post_otlp(lab.http, "/v1/traces", &body).await;
}

/// Before and after: the payment got slower, a retry appeared, the fraud check went, and the
/// stock lookups went from one query to three (an N+1 loop).
async fn compare_two_traces(c: &Client, lab: &Lab) {
    const A: &str = "d0000000000000000000000000000001";
    const B: &str = "d0000000000000000000000000000002";
    send_trace(
        lab,
        A,
        &[
            ("d000000000000001", "", "POST /orders", 0, 100),
            (
                "d000000000000002",
                "d000000000000001",
                "SELECT products",
                2,
                8,
            ),
            (
                "d000000000000003",
                "d000000000000001",
                "payment.authorize",
                10,
                60,
            ),
            (
                "d000000000000004",
                "d000000000000001",
                "fraud_check.score",
                60,
                90,
            ),
        ],
    )
    .await;
    send_trace(
        lab,
        B,
        &[
            ("e000000000000001", "", "POST /orders", 0, 200),
            (
                "e000000000000002",
                "e000000000000001",
                "SELECT products",
                2,
                4,
            ),
            (
                "e000000000000005",
                "e000000000000001",
                "SELECT products",
                4,
                6,
            ),
            (
                "e000000000000006",
                "e000000000000001",
                "SELECT products",
                6,
                8,
            ),
            (
                "e000000000000003",
                "e000000000000001",
                "payment.authorize",
                10,
                150,
            ),
            (
                "e000000000000004",
                "e000000000000001",
                "payment.retry",
                150,
                190,
            ),
        ],
    )
    .await;
    c.goto(&lab.api(&format!("/trace/{A}...{B}")))
        .await
        .unwrap();
    wait_all(c, ".cmp-row", 5).await;
    let rows = c
        .execute(
            "return [...document.querySelectorAll('.cmp-row')].map(r => [r.dataset.path.split(' \\u203a ').pop(), r.dataset.status, r.querySelector('.cmp-change').textContent])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            ["order-service: POST /orders", "slower", "+100ms"],
            ["order-service: SELECT products", "count", "+0µs · ×1 → ×3"],
            ["order-service: payment.authorize", "slower", "+90ms"],
            ["order-service: fraud_check.score", "removed", "removed"],
            ["order-service: payment.retry", "added", "added"]
        ])
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-compare.png"), png).unwrap();

    // Picking two search results leads to the same page.
    c.goto(&lab.api("/search?service=order-service&lookback=1h&limit=50"))
        .await
        .unwrap();
    let button = wait_all(c, "#compare-btn", 1).await.remove(0);
    for id in [A, B] {
        c.find(Locator::Css(&format!("input[data-compare='{id}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    button.click().await.unwrap();
    wait_all(c, ".cmp-row", 5).await;
    let url = c.current_url().await.unwrap();
    assert!(url.path().ends_with(&format!("{A}...{B}")), "{url}");
}

/// A checkout whose fraud check (30 ms) runs beside the payment (80 ms, with a 40 ms
/// gateway call inside): the critical path runs through the payment and its gateway call,
/// never the fraud check, and the statistics give each operation its self time.
async fn critical_path_and_statistics(c: &Client, lab: &Lab) {
    const TRACE: &str = "c0000000000000000000000000000001";
    let base = now_ns() - 20_000_000_000;
    let ms = |m: u64| (base + m * 1_000_000).to_string();
    let span = |id: &str, parent: &str, name: &str, from: u64, to: u64| {
        serde_json::json!({"traceId": TRACE, "spanId": id, "parentSpanId": parent,
            "name": name, "kind": 2, "startTimeUnixNano": ms(from), "endTimeUnixNano": ms(to)})
    };
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "order-service"}}]},
        "scopeSpans": [{"spans": [
            span("c000000000000001", "", "POST /orders", 0, 100),
            span("c000000000000002", "c000000000000001", "fraud_check.score", 10, 40),
            span("c000000000000003", "c000000000000001", "payment.authorize", 10, 90),
            span("c000000000000004", "c000000000000003", "payment.gateway_call", 20, 60),
        ]}]
    }]});
    post_otlp(lab.http, "/v1/traces", &body).await;
    c.goto(&lab.api(&format!("/trace/{TRACE}"))).await.unwrap();
    wait_all(c, ".span-row", 4).await;
    let on_path = c
        .execute(
            "return [...document.querySelectorAll('.span-row.on-critical-path')].map(r => [r.querySelector('.span-name').textContent, +r.dataset.criticalUs])",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        on_path,
        serde_json::json!([
            ["POST /orders", 20000],
            ["payment.authorize", 40000],
            ["payment.gateway_call", 40000]
        ]),
        "root 0-10 and 90-100 ms, authorize 10-20 and 60-90, the gateway call 20-60; \
         the fraud check ran beside them and is not on the path"
    );
    c.find(Locator::Css("#trace-stats summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let stats = c
        .execute(
            "return [...document.querySelectorAll('#trace-stats tbody tr')].map(r => [...r.children].map(td => td.textContent))",
            vec![],
        )
        .await
        .unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_value(stats).unwrap();
    let row = |op: &str| {
        rows.iter()
            .find(|r| r[1] == op)
            .unwrap_or_else(|| panic!("no statistics row for {op}: {rows:?}"))
            .clone()
    };
    let selfs: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        selfs,
        ["40ms", "40ms", "30ms", "20ms"],
        "slowest self time first: {rows:?}"
    );
    assert_eq!(row("payment.gateway_call")[3], "40ms");
    assert_eq!(row("payment.authorize")[4], "40ms");
    assert_eq!(row("POST /orders")[4], "20ms");
    assert_eq!(row("fraud_check.score")[5], "30.0%");
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-critical-path.png"), png).unwrap();

    // The same trace as a flame graph: a box per span, as wide as its share of its parent.
    c.find(Locator::Css("#show-flame"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let boxes = c
        .execute(
            "return [document.getElementById('waterfall').hidden, ...[...document.querySelectorAll('#flame .flame-node')].map(n => [n.title.split(' ')[1], Math.round(parseFloat(n.style.left) * 10) / 10, Math.round(parseFloat(n.style.width) * 10) / 10])]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        boxes,
        serde_json::json!([
            true,
            ["POST", 0, 100],
            ["fraud_check.score", 0, 27.3],
            ["payment.authorize", 27.3, 72.7],
            ["payment.gateway_call", 27.3, 36.4]
        ]),
        "the two children of the root ran at once (30 + 80 ms in 100 ms): side by side, \
         scaled to fit; the gateway call is half of the payment"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(artifact("trace-explorer-flame.png"), png).unwrap();
}
