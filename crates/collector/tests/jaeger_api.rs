//! The trace explorer's API end to end: OTLP/JSON into the real collector binary, Jaeger's
//! JSON out of jaeger_query, checked the way the Jaeger UI and Grafana read it.

mod common;
mod jaeger_fixture;

use common::*;
use jaeger_fixture::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

async fn get(lab: &Lab, path: &str) -> (u16, Value) {
    let r = reqwest::get(lab.api(path)).await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{path}: content-type {ct}"
    );
    (status, r.json().await.unwrap())
}

async fn ok(lab: &Lab, path: &str) -> Value {
    let (status, body) = get(lab, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["limit"], 0, "{path}");
    assert_eq!(body["offset"], 0, "{path}");
    body
}

async fn bad_request(lab: &Lab, path: &str) -> String {
    let (status, body) = get(lab, path).await;
    assert_eq!(status, 400, "{path}: {body}");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["code"], 400);
    body["errors"][0]["msg"].as_str().unwrap().to_string()
}

fn trace_ids(body: &Value) -> BTreeSet<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no tag {key} in {span}"))
}

async fn wait_for_all_spans(lab: &Lab) {
    for _ in 0..100 {
        let (status, body) = get(lab, &format!("/api/traces/{CHECKOUT}")).await;
        if status == 200 && body["data"][0]["spans"].as_array().unwrap().len() == 6 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the checkout trace never had its 6 spans");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_api_serves_what_the_jaeger_ui_and_grafana_read() {
    let lab = start_lab().await;
    wait_for_all_spans(&lab).await;

    // Services and operations.
    let body = ok(&lab, "/api/services").await;
    assert_eq!(
        body,
        json!({"data": ["inventory-service", "order-service", "payment-service"],
               "total": 3, "limit": 0, "offset": 0, "errors": null})
    );
    let body = ok(&lab, "/api/services/order-service/operations").await;
    let names: BTreeSet<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "GET /orders/{id}",
            "POST /inventory/reserve",
            "POST /orders",
            "POST /payments",
            "order_service.process_order"
        ])
    );
    let body = ok(
        &lab,
        "/api/operations?service=order-service&spanKind=server",
    )
    .await;
    assert_eq!(
        body["data"],
        json!([{"name": "GET /orders/{id}", "spanKind": "server"},
               {"name": "POST /orders", "spanKind": "server"}])
    );
    let body = ok(&lab, "/api/operations?service=order-service").await;
    assert_eq!(body["total"], 5);

    // Search by service, operation, tags (JSON, logfmt and tag=k:v), durations.
    let body = ok(&lab, "/api/traces?service=order-service&lookback=1h").await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT, LOOKUP]));
    let body = ok(
        &lab,
        "/api/traces?service=order-service&operation=POST%20/orders",
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT]));
    let body = ok(
        &lab,
        "/api/traces?service=order-service&tags=%7B%22error%22%3A%22true%22%7D",
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT]));
    let body = ok(&lab, "/api/traces?service=order-service&tags=error%3Dtrue").await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT]));
    let body = ok(&lab, "/api/traces?service=order-service&tag=error:true").await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT]));
    let body = ok(
        &lab,
        "/api/traces?service=order-service&tags=http.response.status_code%3D200",
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[LOOKUP]));
    // Resource attributes are searchable too, as in Jaeger.
    let body = ok(
        &lab,
        "/api/traces?service=inventory-service&tags=host.id%3Di-0abc",
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT, LISTING]));
    let body = ok(&lab, "/api/traces?service=order-service&minDuration=500ms").await;
    assert_eq!(trace_ids(&body), ids(&[CHECKOUT]));
    let body = ok(
        &lab,
        "/api/traces?service=payment-service&maxDuration=100ms",
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[]));
    let body = ok(&lab, "/api/traces?service=order-service&limit=1").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let now_us = now_ns() / 1000;
    let body = ok(
        &lab,
        &format!(
            "/api/traces?service=order-service&start={}&end={}",
            now_us - 3_600_000_000,
            now_us - 3_000_000_000
        ),
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[]), "traces outside start..end");

    // One trace in Jaeger's JSON.
    let body = ok(&lab, &format!("/api/traces/{CHECKOUT}")).await;
    assert_eq!(body["errors"], Value::Null);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], CHECKOUT);
    assert_eq!(trace["warnings"], Value::Null);
    let processes = trace["processes"].as_object().unwrap();
    assert_eq!(
        processes.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&["p1", "p2", "p3"])
    );
    let services: BTreeSet<&str> = processes
        .values()
        .map(|p| p["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from(["inventory-service", "order-service", "payment-service"])
    );
    let root = span(trace, "POST /orders");
    let keys: BTreeSet<&str> = root
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "traceID",
            "spanID",
            "operationName",
            "references",
            "startTime",
            "duration",
            "tags",
            "logs",
            "processID",
            "warnings"
        ])
    );
    assert_eq!(root["spanID"], "a000000000000001");
    assert_eq!(root["references"], json!([]));
    assert_eq!(root["duration"], 900_000);
    assert!(root["startTime"].as_u64().unwrap() > 1_600_000_000_000_000);
    assert_eq!(
        processes[root["processID"].as_str().unwrap()]["serviceName"],
        "order-service"
    );
    assert_eq!(
        processes[root["processID"].as_str().unwrap()]["tags"],
        json!([{"key": "k8s.namespace.name", "type": "string", "value": "shop"},
               {"key": "k8s.pod.name", "type": "string", "value": "order-service-7d4b9"}])
    );
    assert_eq!(
        tag(root, "http.response.status_code"),
        &json!({"key": "http.response.status_code", "type": "int64", "value": 500})
    );
    assert_eq!(
        tag(root, "span.kind"),
        &json!({"key": "span.kind", "type": "string", "value": "server"})
    );
    assert_eq!(tag(root, "error")["value"], true);
    assert_eq!(tag(root, "error")["type"], "bool");
    assert_eq!(tag(root, "otel.status_code")["value"], "ERROR");
    assert_eq!(
        tag(root, "otel.status_description")["value"],
        "payment failed"
    );
    assert_eq!(tag(root, "otel.scope.name")["value"], "otel-lab-test");

    let pay = span(trace, "payment.authorize");
    assert_eq!(
        pay["references"],
        json!([
            {"refType": "CHILD_OF", "traceID": CHECKOUT, "spanID": "a000000000000005"},
            {"refType": "FOLLOWS_FROM", "traceID": LINKED, "spanID": "b000000000000001"}
        ])
    );
    assert_eq!(
        tag(pay, "payment.amount"),
        &json!({"key": "payment.amount", "type": "float64", "value": 42.5})
    );
    assert_eq!(
        pay["logs"],
        json!([{"timestamp": pay["startTime"].as_u64().unwrap() + 795_000,
                "fields": [{"key": "event", "type": "string", "value": "exception"},
                           {"key": "exception.message", "type": "string", "value": "card gateway timeout"}]}])
    );
    let inv = span(trace, "inventory.reserve_stock");
    assert_eq!(tag(inv, "inventory.reserved")["type"], "bool");

    // The lab's links API: the payment's link, to a trace the explorer does not hold.
    let links = ok(&lab, &format!("/api/lab/links/{CHECKOUT}")).await;
    assert_eq!(
        links["data"]["links"],
        json!([{"spanID": pay["spanID"], "traceID": LINKED,
                "targetSpanID": "b000000000000001", "held": false}])
    );
    assert_eq!(links["data"]["linkedFrom"], json!([]));
    // Nothing held links into the lookup; a trace not held is 404, as /api/traces/{id}.
    let links = ok(&lab, &format!("/api/lab/links/{LOOKUP}")).await;
    assert_eq!(links["data"]["links"], json!([]));
    let (status, _) = get(&lab, &format!("/api/lab/links/{LINKED}")).await;
    assert_eq!(status, 404);

    // Spans sent in separate requests merge into one trace.
    let body = ok(&lab, &format!("/api/traces/{LISTING}")).await;
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 2);

    // Several ids at once; the missing one is reported in errors, as Jaeger does.
    let body = ok(
        &lab,
        &format!("/api/traces?traceID={LOOKUP}&traceID={LINKED}"),
    )
    .await;
    assert_eq!(trace_ids(&body), ids(&[LOOKUP]));
    assert_eq!(body["errors"][0]["traceID"], LINKED);

    // Unknown trace → 404; malformed parameters → 400 with a message.
    let (status, body) = get(&lab, &format!("/api/traces/{LINKED}")).await;
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["code"], 404);
    assert_eq!(body["errors"][0]["msg"], "trace not found");
    assert!(
        bad_request(&lab, "/api/traces/not-hex")
            .await
            .contains("traceID")
    );
    assert_eq!(
        bad_request(&lab, "/api/traces").await,
        "parameter 'service' is required"
    );
    assert!(
        bad_request(&lab, "/api/traces?service=order-service&minDuration=fast")
            .await
            .contains("minDuration")
    );
    assert!(
        bad_request(&lab, "/api/traces?service=order-service&start=yesterday")
            .await
            .contains("'start'")
    );
    assert!(
        bad_request(&lab, "/api/traces?service=order-service&tags=%7Bbroken")
            .await
            .contains("tags")
    );
    assert!(
        bad_request(
            &lab,
            "/api/traces?service=order-service&minDuration=2s&maxDuration=1s"
        )
        .await
        .contains("maxDuration")
    );
    assert!(
        bad_request(&lab, "/api/operations")
            .await
            .contains("service")
    );
    assert!(
        bad_request(&lab, "/api/dependencies?endTs=later")
            .await
            .contains("endTs")
    );

    // Service dependencies: parent → child calls across services.
    let now_ms = now_ns() / 1_000_000;
    let body = ok(
        &lab,
        &format!("/api/dependencies?endTs={now_ms}&lookback=3600000"),
    )
    .await;
    assert_eq!(
        body["data"],
        json!([
            {"parent": "order-service", "child": "inventory-service", "callCount": 1},
            {"parent": "order-service", "child": "payment-service", "callCount": 1}
        ])
    );
    let body = ok(
        &lab,
        &format!(
            "/api/dependencies?endTs={}&lookback=1000",
            now_ms - 3_600_000
        ),
    )
    .await;
    assert_eq!(body["data"], json!([]));

    // The UI answers its own routes with the page.
    for path in [
        "/",
        "/search",
        &format!("/trace/{CHECKOUT}"),
        "/dependencies",
    ] {
        let r = reqwest::get(lab.api(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.text().await.unwrap().contains("/static/app.js"), "{path}");
    }
    let r = reqwest::get(lab.api("/static/app.js")).await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let (status, _) = get(&lab, "/api/nothing-here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_backend_name_that_is_not_defined_stops_the_collector_with_the_key() {
    let (grpc, http, health, metrics, query) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let yaml =
        config(grpc, http, health, metrics, query).replace("traces: lab_store", "traces: lab_stor");
    let mut c = Collector::start(&yaml);
    let status = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            c.child.try_wait().unwrap()
        })
        .expect("the collector should refuse to start");
    assert!(!status.success());
    let logs = c.logs();
    assert!(logs.contains("storage::traces"), "{logs}");
    assert!(logs.contains("\"lab_stor\""), "{logs}");
    assert!(
        logs.contains("lab_store"),
        "the error lists defined backends: {logs}"
    );

    let yaml = config(grpc, http, health, metrics, query)
        .replace("trace_storage: lab_store", "trace_storage: elsewhere");
    let mut c = Collector::start(&yaml);
    let status = (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            c.child.try_wait().unwrap()
        })
        .expect("the collector should refuse to start");
    assert!(!status.success());
    let logs = c.logs();
    assert!(logs.contains("trace_storage"), "{logs}");
    assert!(logs.contains("\"elsewhere\""), "{logs}");
}

/// One OTLP/JSON logs request from order-service with these records.
fn logs_request(records: Vec<Value>) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "order-service"}}]},
        "scopeLogs": [{"logRecords": records}]
    }]})
}

fn log_events(span: &Value) -> Vec<(String, String)> {
    span["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let field = |k: &str| {
                l["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["key"] == k)
                    .map(|f| f["value"].as_str().unwrap_or_default().to_string())
                    .unwrap_or_default()
            };
            (field("event"), field("level"))
        })
        .collect()
}

#[tokio::test]
async fn log_records_show_on_their_spans_whichever_arrives_first() {
    let lab = start_lab().await;
    wait_for_all_spans(&lab).await;
    let t = (now_ns() - 59_000_000_000).to_string();
    post_otlp(
        lab.http,
        "/v1/logs",
        &logs_request(vec![
            json!({"timeUnixNano": t, "severityText": "INFO", "severityNumber": 9,
                   "body": {"stringValue": "order received"},
                   "traceId": CHECKOUT, "spanId": "a000000000000001",
                   "attributes": [{"key": "customer.tier", "value": {"stringValue": "gold"}}]}),
            json!({"timeUnixNano": t, "severityNumber": 17,
                   "body": {"stringValue": "payment failed"},
                   "traceId": CHECKOUT, "spanId": "a000000000000001"}),
            json!({"timeUnixNano": t, "severityText": "INFO",
                   "body": {"stringValue": "a line outside any span"}}),
            // Its span has not arrived yet.
            json!({"timeUnixNano": t, "severityText": "WARN",
                   "body": {"stringValue": "written before the span ended"},
                   "traceId": "22222222222222222222222222222222", "spanId": "b000000000000001"}),
        ]),
    )
    .await;

    let body = ok(&lab, &format!("/api/traces/{CHECKOUT}")).await;
    let trace = &body["data"][0];
    let root = span(trace, "POST /orders");
    let events = log_events(root);
    assert!(
        events.contains(&("order received".into(), "INFO".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("payment failed".into(), "ERROR".into())),
        "the severity number names the level when the text is missing: {events:?}"
    );
    let with_tier = root["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["key"] == "customer.tier")
        })
        .expect("the record's attributes are fields of its log");
    assert!(with_tier["timestamp"].as_u64().unwrap() > 0);
    for other in trace["spans"].as_array().unwrap() {
        if other["spanID"] != "a000000000000001" {
            assert!(
                log_events(other)
                    .iter()
                    .all(|(e, _)| e != "order received" && e != "payment failed"),
                "a log landed on the wrong span: {other}"
            );
        }
    }

    // The span arrives after its log.
    let late = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "order-service"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "22222222222222222222222222222222", "spanId": "b000000000000001",
            "name": "GET /orders/{id}", "kind": 2,
            "startTimeUnixNano": t, "endTimeUnixNano": (now_ns() - 58_000_000_000).to_string()
        }]}]
    }]});
    post_otlp(lab.http, "/v1/traces", &late).await;
    let mut events = Vec::new();
    for _ in 0..50 {
        let (status, body) = get(&lab, "/api/traces/22222222222222222222222222222222").await;
        if status == 200 {
            events = log_events(&body["data"][0]["spans"][0]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        events,
        vec![(
            "written before the span ended".to_string(),
            "WARN".to_string()
        )]
    );
}

/// The first point's value of an SPM metric family's series for operation `op`.
fn first_point(fam: &Value, op: &str) -> Option<f64> {
    fam["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["labels"][0]["value"] == op)
        .and_then(|m| m["metricPoints"][0]["gaugeValue"]["doubleValue"].as_f64())
}

#[tokio::test]
async fn the_monitor_answers_jaegers_spm_api_from_the_stored_spans() {
    let lab = start_lab().await;
    wait_for_all_spans(&lab).await;
    let base = lab.api("");
    let get_raw = |path: String| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let window = "endTs=&lookback=3600000&step=3600000";
    let (status, calls) = get_raw(format!(
        "/api/metrics/calls?service=order-service&groupByOperation=true&{window}"
    ))
    .await;
    assert_eq!(status, 200, "{calls}");
    assert_eq!(calls["name"], "service_operation_call_rate");
    assert_eq!(calls["type"], "GAUGE");
    let series: BTreeSet<String> = calls["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let labels = m["labels"].as_array().unwrap();
            assert_eq!(
                labels[1],
                json!({"name": "service_name", "value": "order-service"})
            );
            labels[0]["value"].as_str().unwrap().to_string()
        })
        .collect();
    // Server spans only: order-service's two server operations, not its client calls.
    assert_eq!(series, ids(&["GET /orders/{id}", "POST /orders"]));
    let point = &calls["metrics"][0]["metricPoints"][0];
    assert!(
        (point["gaugeValue"]["doubleValue"].as_f64().unwrap() - 1.0 / 3600.0).abs() < 1e-9,
        "one call in an hour: {point}"
    );
    assert!(point["timestamp"].as_str().unwrap().ends_with('Z'));

    let (_, errors) = get_raw(format!(
        "/api/metrics/errors?service=order-service&groupByOperation=true&{window}"
    ))
    .await;
    let rate_of = |fam: &Value, op: &str| first_point(fam, op).unwrap();
    assert_eq!(rate_of(&errors, "POST /orders"), 1.0, "the checkout failed");
    let (_, p95) = get_raw(format!(
        "/api/metrics/latencies?service=order-service&groupByOperation=true&quantile=0.95&{window}"
    ))
    .await;
    assert_eq!(p95["name"], "service_operation_latencies");
    assert_eq!(rate_of(&p95, "POST /orders"), 900.0, "milliseconds");

    let (status, by_service) = get_raw(format!(
        "/api/metrics/calls?service=order-service&service=payment-service&{window}"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_service["name"], "service_call_rate");
    assert_eq!(by_service["metrics"].as_array().unwrap().len(), 2);
    let (status, err) = get_raw("/api/metrics/latencies?service=order-service".into()).await;
    assert_eq!(status, 400);
    assert!(
        err["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("quantile")
    );
    let (status, _) = get_raw("/api/metrics/calls".into()).await;
    assert_eq!(status, 400, "a service is required");
}

#[tokio::test]
async fn log_records_are_searched_by_service_level_and_text_with_or_without_a_trace() {
    let lab = start_lab().await;
    let t = |back_s: u64| (now_ns() - back_s * 1_000_000_000).to_string();
    post_otlp(
        lab.http,
        "/v1/logs",
        &logs_request(vec![
            json!({"timeUnixNano": t(50), "severityText": "ERROR",
                   "body": {"stringValue": "Payment failed: card gateway timeout"},
                   "traceId": CHECKOUT, "spanId": "a000000000000006"}),
            json!({"timeUnixNano": t(40), "severityText": "INFO",
                   "body": {"stringValue": "seeded an empty catalogue"}}),
            json!({"timeUnixNano": t(30), "severityText": "WARN",
                   "body": {"stringValue": "retrying the payment"},
                   "attributes": [{"key": "reason", "value": {"stringValue": "gateway TIMEOUT"}}]}),
            json!({"timeUnixNano": t(7200), "severityText": "ERROR",
                   "body": {"stringValue": "payment failed two hours ago"}}),
        ]),
    )
    .await;
    let found = |query: &'static str| {
        let url = lab.api(&format!("/api/lab/logs?{query}"));
        async move {
            let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["message"].as_str().unwrap().to_string(),
                        l["traceID"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("text=payment%20FAILED").await,
        vec![(
            "Payment failed: card gateway timeout".to_string(),
            CHECKOUT.to_string()
        )],
        "text ignores case; the last hour by default"
    );
    assert_eq!(
        found("text=timeout").await.len(),
        2,
        "the message or any string attribute"
    );
    assert_eq!(
        found("level=warn").await,
        vec![("retrying the payment".to_string(), String::new())]
    );
    assert_eq!(
        found("service=order-service&lookback=3h&level=error")
            .await
            .len(),
        2
    );
    assert_eq!(found("service=payment-service").await.len(), 0);
    let newest_first: Vec<String> = found("").await.into_iter().map(|(m, _)| m).collect();
    assert_eq!(
        newest_first,
        [
            "retrying the payment",
            "seeded an empty catalogue",
            "Payment failed: card gateway timeout"
        ]
    );
    let r = reqwest::get(lab.api("/api/lab/logs?lookback=soon"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// The monitor and the spanmetrics connector count the same scripted load the same way: the
/// calls and the errors of each server operation, from one collector that feeds both.
#[tokio::test]
async fn the_monitor_counts_what_spanmetrics_counts() {
    let (http, health, metrics, query, prom) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
  jaeger_storage: {{backends: {{lab_store: {{memory: {{max_traces: 1000}}}}}}}}
  jaeger_query:
    storage: {{traces: lab_store}}
    http: {{endpoint: "127.0.0.1:{query}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
connectors:
  spanmetrics: {{metrics_flush_interval: 200ms}}
exporters:
  jaeger_storage_exporter: {{trace_storage: lab_store}}
  prometheus: {{endpoint: "127.0.0.1:{prom}"}}
service:
  extensions: [health_check, jaeger_storage, jaeger_query]
  telemetry:
    metrics: {{address: "127.0.0.1:{metrics}"}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [jaeger_storage_exporter, spanmetrics]}}
    metrics: {{receivers: [spanmetrics], exporters: [prometheus]}}
"#
    ));
    c.wait_healthy(health).await;
    // 30 calls of GET /a (6 failed) and 12 of POST /b (none failed), plus client spans.
    let now = now_ns();
    let mut spans = Vec::new();
    for i in 0..42u64 {
        let (name, failed) = if i < 30 {
            ("GET /a", i % 5 == 0)
        } else {
            ("POST /b", false)
        };
        let start = now - (120 - i) * 1_000_000_000;
        spans.push(json!({
            "traceId": format!("{:032x}", 0xabc000 + i), "spanId": format!("{:016x}", 0xabc000 + i),
            "name": name, "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 5_000_000).to_string(),
            "status": {"code": if failed { 2 } else { 0 }}
        }));
        spans.push(json!({
            "traceId": format!("{:032x}", 0xabc000 + i), "spanId": format!("{:016x}", 0xdef000 + i),
            "parentSpanId": format!("{:016x}", 0xabc000 + i), "name": "GET", "kind": 3,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 1_000_000).to_string()
        }));
    }
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "scripted"}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    post_otlp(http, "/v1/traces", &body).await;

    // spanmetrics: calls by operation and status, for server spans.
    let mut page = String::new();
    for _ in 0..100 {
        page = reqwest::get(format!("http://127.0.0.1:{prom}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("span_name=\"POST /b\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spanmetrics_calls = |op: &str, errors_only: bool| -> f64 {
        page.lines()
            .filter(|l| {
                l.starts_with("traces_span_metrics_calls_total{")
                    && l.contains(&format!("span_name=\"{op}\""))
                    && l.contains("span_kind=\"SPAN_KIND_SERVER\"")
                    && (!errors_only || l.contains("status_code=\"STATUS_CODE_ERROR\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    // The monitor over the same ten minutes, one step.
    let monitor = |figure: &'static str, op: &'static str| {
        let url = format!(
            "http://127.0.0.1:{query}/api/metrics/{figure}?service=scripted&groupByOperation=true&lookback=600000&step=600000"
        );
        async move {
            let fam: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            first_point(&fam, op).unwrap_or_else(|| panic!("no {figure} series for {op}: {fam}"))
        }
    };
    for op in ["GET /a", "POST /b"] {
        let calls = spanmetrics_calls(op, false);
        let errors = spanmetrics_calls(op, true);
        assert!(calls > 0.0, "spanmetrics has no calls for {op}:\n{page}");
        let monitored_calls = monitor("calls", op).await * 600.0;
        assert!(
            (monitored_calls - calls).abs() < 1e-6,
            "{op}: monitor {monitored_calls} calls, spanmetrics {calls}"
        );
        assert_eq!(
            monitor("errors", op).await,
            errors / calls,
            "{op} error share"
        );
    }
    assert_eq!(spanmetrics_calls("GET /a", false), 30.0);
    assert_eq!(spanmetrics_calls("GET /a", true), 6.0);
}
