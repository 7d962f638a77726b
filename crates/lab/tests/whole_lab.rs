//! The whole lab, as a learner runs it: every real process started by `lab up`, one order
//! sent, and the trace, logs and metrics it leaves checked where the lab puts them.
//! Uses the lab's fixed ports, so it refuses (fails) when another lab is running.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{Lab, build_workspace_binaries};

#[derive(Debug, Clone)]
struct SpanRow {
    service: String,
    name: String,
    kind: i64,
    span_id: String,
    parent: String,
    resource: HashMap<String, String>,
    attributes: HashMap<String, String>,
}

fn text_of(v: &serde_json::Value) -> String {
    let inner = v
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or_default();
    match inner {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Every span of `trace_id` the gateway wrote to STATE/traces.jsonl.
fn spans_of(state: &Path, trace_id: &str) -> Vec<SpanRow> {
    let Ok(text) = std::fs::read_to_string(state.join("traces.jsonl")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            let resource: HashMap<String, String> = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|kv| {
                    (
                        kv["key"].as_str().unwrap().to_string(),
                        text_of(&kv["value"]),
                    )
                })
                .collect();
            for s in rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
            {
                if s["traceId"].as_str() == Some(trace_id) {
                    out.push(SpanRow {
                        service: resource.get("service.name").cloned().unwrap_or_default(),
                        name: s["name"].as_str().unwrap_or_default().to_string(),
                        kind: s["kind"].as_i64().unwrap_or(0),
                        span_id: s["spanId"].as_str().unwrap_or_default().to_string(),
                        parent: s["parentSpanId"].as_str().unwrap_or_default().to_string(),
                        resource: resource.clone(),
                        attributes: s["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|kv| {
                                (
                                    kv["key"].as_str().unwrap_or_default().to_string(),
                                    text_of(&kv["value"]),
                                )
                            })
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

/// (trace id, span id, name, service) of every span in STATE/traces.jsonl with a link into
/// `trace_id`, and the linked span ids.
fn spans_linking_to(
    state: &Path,
    trace_id: &str,
) -> Vec<(String, String, String, String, Vec<String>)> {
    let Ok(text) = std::fs::read_to_string(state.join("traces.jsonl")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|kv| kv["key"] == "service.name")
                .map(|kv| text_of(&kv["value"]))
                .unwrap_or_default();
            for s in rs["scopeSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|ss| ss["spans"].as_array().into_iter().flatten())
            {
                let linked: Vec<String> = s["links"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|l| l["traceId"].as_str() == Some(trace_id))
                    .filter_map(|l| l["spanId"].as_str().map(str::to_owned))
                    .collect();
                if !linked.is_empty() {
                    out.push((
                        s["traceId"].as_str().unwrap_or_default().to_owned(),
                        s["spanId"].as_str().unwrap_or_default().to_owned(),
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        service.clone(),
                        linked,
                    ));
                }
            }
        }
    }
    out
}

fn post_order(trace_id: &str, parent: &str) -> (u16, serde_json::Value) {
    let body = r#"{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1},{"sku":"MS-002","quantity":2}],"payment":{"card_token":"tok_visa"}}"#;
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request,urllib.error\nr=urllib.request.Request('http://127.0.0.1:8080/orders',data=sys.argv[1].encode(),headers={'content-type':'application/json','traceparent':sys.argv[2],'baggage':'session.id=s-whole-lab'},method='POST')\ntry:\n  resp=urllib.request.urlopen(r,timeout=30); print(resp.status); print(resp.read().decode())\nexcept urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode())",
            body,
            &format!("00-{trace_id}-{parent}-01"),
        ])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let status: u16 = lines.next().unwrap_or("0").parse().unwrap_or(0);
    (
        status,
        serde_json::from_str(lines.next().unwrap_or("null")).unwrap_or_default(),
    )
}

fn get(url: &str) -> String {
    let out = Command::new("python3").args(["-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())", url]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_order_is_one_trace_through_all_four_workloads_with_logs_and_metrics() {
    build_workspace_binaries();
    let mut lab = Lab::start();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, order) = post_order(trace_id, caller_span);
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        order["trace_id"], trace_id,
        "the caller's traceparent is continued"
    );

    let services = [
        "order-service",
        "inventory-service",
        "payment-service",
        "fraud-check",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let spans = spans_of(lab.state.path(), trace_id);
        let seen: HashSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
        if services.iter().all(|s| seen.contains(s))
            && spans.iter().any(|s| s.name == "payment.gateway_call")
        {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "trace incomplete after 30s: {:?}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    };

    // One trace, every parent present: the root's parent is the caller's span.
    let ids: HashMap<&str, &SpanRow> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for s in &spans {
        assert!(
            s.parent == caller_span || ids.contains_key(s.parent.as_str()),
            "parent of {} / {} is missing",
            s.service,
            s.name
        );
    }
    assert_eq!(
        spans.iter().filter(|s| s.parent == caller_span).count(),
        1,
        "one root under the caller"
    );
    // Each downstream server span hangs under a CLIENT span of order-service.
    for svc in ["inventory-service", "payment-service", "fraud-check"] {
        let server = spans
            .iter()
            .find(|s| s.service == svc && s.kind == 2)
            .unwrap_or_else(|| panic!("no server span from {svc}"));
        let parent = ids[server.parent.as_str()];
        assert_eq!(
            (parent.service.as_str(), parent.kind),
            ("order-service", 3),
            "{svc}'s server span parent"
        );
    }
    // The caller's baggage reaches every service (order-service adds customer.tier to it;
    // it must not replace what the caller sent).
    for svc in services {
        let server = spans
            .iter()
            .find(|s| s.service == svc && s.kind == 2)
            .unwrap_or_else(|| panic!("no server span from {svc}"));
        assert_eq!(
            server.attributes.get("session.id").map(String::as_str),
            Some("s-whole-lab"),
            "{svc}'s server span lacks the caller's baggage: {:?}",
            server.attributes
        );
    }
    for name in [
        "order_service.process_order",
        "inventory.reserve_stock",
        "payment.authorize",
        "fraud_check.score",
        "order_service.persist",
    ] {
        assert!(
            spans.iter().any(|s| s.name == name),
            "business span {name} missing"
        );
    }
    // Each workload carries its simulated platform, and went through its collector path.
    let platform = |svc: &str, key: &str| {
        spans
            .iter()
            .find(|s| s.service == svc)
            .and_then(|s| s.resource.get(key).cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        platform("order-service", "k8s.node.name"),
        "lab-node-1",
        "order-service went through the node's agent"
    );
    assert_eq!(platform("payment-service", "cloud.platform"), "aws_ecs");
    assert_eq!(platform("inventory-service", "cloud.platform"), "aws_ec2");
    assert_eq!(platform("fraud-check", "cloud.platform"), "aws_lambda");

    // Logs carry the trace id.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(lab.state.path().join("logs.jsonl"))
        .unwrap_or_default()
        .contains(&format!("\"traceId\":\"{trace_id}\""))
    {
        assert!(
            Instant::now() < deadline,
            "no log record carries the trace id"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // RED metrics from the SDKs and from spans on the gateway's Prometheus exporter.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = get("http://127.0.0.1:8889/metrics");
        let sdk = page.lines().any(|l| {
            l.starts_with("http_server_request_duration_seconds_bucket{")
                && l.contains("http_route=\"/orders\"")
                && l.contains("job=\"order-service\"")
        });
        let red = page.lines().any(|l| {
            l.starts_with("traces_span_metrics_calls_total{")
                && l.contains("service_name=\"payment-service\"")
        });
        if sdk && red {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics missing (sdk {sdk}, span metrics {red})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The trace explorer on :16686 (what `make traffic` links to) has the same trace.
    let api: serde_json::Value = serde_json::from_str(&get(&format!(
        "http://127.0.0.1:16686/api/traces/{trace_id}"
    )))
    .unwrap();
    let trace = &api["data"][0];
    let explorer_services: HashSet<String> = trace["processes"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["serviceName"].as_str().unwrap().to_string())
        .collect();
    for svc in services {
        assert!(
            explorer_services.contains(svc),
            "{svc} missing from the explorer's trace: {explorer_services:?}"
        );
    }
    assert!(
        get(&format!("http://127.0.0.1:16686/trace/{trace_id}")).contains("<html"),
        "the trace page is served"
    );

    // The asynchronous half: the order's event goes out through the outbox (a PRODUCER span
    // in this trace) and the fulfilment Lambda handles it in a trace of its own that links
    // back to that send.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (send, fulfilment) = loop {
        let send = spans_of(lab.state.path(), trace_id)
            .into_iter()
            .find(|s| s.name == "send orders");
        let linking = spans_linking_to(lab.state.path(), trace_id);
        if let Some(send) = send
            && let Some(batch) = linking.into_iter().find(|(_, _, name, service, _)| {
                name == "process orders" && service == "fulfilment"
            })
        {
            break (send, batch);
        }
        assert!(
            Instant::now() < deadline,
            "no fulfilment trace links to the order's trace after 30s"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(send.kind, 4, "the send is a PRODUCER span");
    assert_eq!(send.service, "order-service");
    let (fulfilment_trace, _, _, _, linked_spans) = fulfilment;
    assert_ne!(
        fulfilment_trace, trace_id,
        "fulfilment is a trace of its own"
    );
    assert!(
        linked_spans.contains(&send.span_id),
        "the fulfilment links to the send span"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fulfilment_spans = spans_of(lab.state.path(), &fulfilment_trace);
        let names: HashSet<&str> = fulfilment_spans.iter().map(|s| s.name.as_str()).collect();
        if names.contains("payment.capture") && names.contains("inventory.commit_reservation") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fulfilment trace lacks its capture and commit: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The explorer carries the link as Jaeger does: a FOLLOWS_FROM reference.
    let api: serde_json::Value = serde_json::from_str(&get(&format!(
        "http://127.0.0.1:16686/api/traces/{fulfilment_trace}"
    )))
    .unwrap();
    let follows: Vec<&serde_json::Value> = api["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["references"].as_array().unwrap().iter())
        .filter(|r| r["refType"] == "FOLLOWS_FROM" && r["traceID"] == trace_id)
        .collect();
    assert!(
        !follows.is_empty(),
        "no FOLLOWS_FROM reference to the order's trace"
    );

    let status = lab.stop();
    assert!(status.success(), "lab up exits 0 on SIGTERM: {status}");
}
