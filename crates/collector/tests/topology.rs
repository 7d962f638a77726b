//! The lab's two-tier design for real: an agent collector forwarding to a gateway collector.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_to_gateway_chain_delivers_every_span_with_the_node_name() {
    let (backend_addr, rec) = backend().await;
    let (g_grpc, g_http, g_health, g_metrics) =
        (free_port(), free_port(), free_port(), free_port());
    let mut gateway = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{g_health}"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{g_grpc}"}}
      http: {{endpoint: "127.0.0.1:{g_http}"}}
processors:
  batch: {{timeout: 100ms}}
exporters:
  otlp/backend:
    endpoint: {backend_addr}
    tls: {{insecure: true}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{g_metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlp/backend]}}
"#
    ));
    gateway.wait_healthy(g_health).await;

    // The agent uses the repo's own local agent config, pointed at this gateway over HTTP.
    let (a_grpc, a_http, a_health, a_metrics) =
        (free_port(), free_port(), free_port(), free_port());
    let agent_cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/local/agent.yaml"))
        .unwrap()
        .replace("127.0.0.1:4317", &format!("127.0.0.1:{a_grpc}"))
        .replace("127.0.0.1:4318", &format!("127.0.0.1:{a_http}"))
        .replace("127.0.0.1:13134", &format!("127.0.0.1:{a_health}"))
        .replace("127.0.0.1:8887", &format!("127.0.0.1:{a_metrics}"))
        .replace(
            "  otlp/gateway:\n    endpoint: ${env:GATEWAY_OTLP_ENDPOINT:-127.0.0.1:4417}\n    tls:\n      insecure: true",
            &format!("  otlp/gateway:\n    endpoint: 127.0.0.1:{g_grpc}\n    tls:\n      insecure: true\n  otlp_http/gateway:\n    endpoint: http://127.0.0.1:{g_http}"),
        )
        .replace("exporters: [otlp/gateway]", "exporters: [otlp_http/gateway]");
    let mut agent = Collector::start(&agent_cfg);
    agent.wait_healthy(a_health).await;

    let client = reqwest::Client::new();
    let mut sent = std::collections::HashSet::new();
    let mut requests = Vec::new();
    for i in 0..300u32 {
        let span_id = format!("{:016x}", 0xa000 + i);
        let body = format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"order-service"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"{span_id}","name":"op","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#
        );
        let req = client
            .post(format!("http://127.0.0.1:{a_http}/v1/traces"))
            .header("content-type", "application/json")
            .body(body)
            .send();
        requests.push(async move { req.await.unwrap().status() });
        sent.insert(span_id);
    }
    // All at once, as many SDKs exporting together: each is acknowledged when its batch
    // has been handed on.
    for status in futures::future::join_all(requests).await {
        assert_eq!(status, 200);
    }
    assert!(
        eventually(15, || rec.span_ids().len() >= 300).await,
        "only {} arrived\nagent:\n{}\ngateway:\n{}",
        rec.span_ids().len(),
        agent.logs(),
        gateway.logs()
    );
    let got: std::collections::HashSet<String> = rec.span_ids().into_iter().collect();
    assert_eq!(got, sent);
    assert_eq!(rec.span_ids().len(), 300, "no duplicates");
    for (resource, _) in rec.spans() {
        let attrs = resource.resource.unwrap().attributes;
        let node = attrs
            .iter()
            .find(|kv| kv.key == "k8s.node.name")
            .expect("agent adds the node name");
        assert_eq!(
            collector::exporters::debug::any_value_text(node.value.as_ref().unwrap()),
            "lab-node-1"
        );
    }
}
