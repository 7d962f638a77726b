use super::*;
use crate::component::{BuildContext, ConsumeError, Host};
use crate::config::Node;
use crate::config::{ComponentId, Errors};
use crate::telemetry::SelfTelemetry;
use opentelemetry_proto::tonic::logs::v1::ScopeLogs;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::{Arc, Mutex};

fn logs() -> Vec<ResourceLogs> {
    let record = |sev: i32, body: &str, trace: bool| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_001,
        severity_number: sev,
        severity_text: if sev >= 17 {
            "ERROR".into()
        } else {
            "INFO".into()
        },
        body: Some(crate::pdata::attributes::string(body)),
        trace_id: if trace { vec![0xab; 16] } else { Vec::new() },
        span_id: if trace { vec![0xcd; 8] } else { Vec::new() },
        attributes: vec![crate::pdata::attributes::string_kv("order.id", "o-42")],
        ..Default::default()
    };
    vec![ResourceLogs {
        resource: Some(Resource {
            attributes: vec![
                crate::pdata::attributes::string_kv("service.name", "order-service"),
                crate::pdata::attributes::string_kv("service.instance.id", "pod-1"),
                crate::pdata::attributes::string_kv("deployment.environment.name", "lab"),
                crate::pdata::attributes::string_kv("k8s.pod.name", "order-7d9"),
            ],
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: vec![
                record(9, "order placed", true),
                record(17, "payment declined: \"card\"", true),
                record(9, "stock checked", false),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }]
}

fn config(yaml: &str) -> LokiConfig {
    let node = Node::parse("t.yaml", yaml).unwrap();
    let mut errors = Errors::default();
    registry::check::<LokiConfig>(&node, "exporters::loki", &mut errors)
        .unwrap_or_else(|| panic!("{:?}", errors.errors))
}

#[test]
fn records_become_streams_by_label_set_with_logfmt_lines() {
    let cfg = config("endpoint: http://loki:3100/loki/api/v1/push\n");
    let body = push_request(&cfg, &logs());
    let streams = body["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "info and error streams: {body}");
    let info = streams
        .iter()
        .find(|s| s["stream"]["level"] == "info")
        .unwrap();
    assert_eq!(
        info["stream"],
        json!({
            "service_name": "order-service",
            "deployment_environment": "lab",
            "exporter": "OTLP",
            "job": "order-service",
            "instance": "pod-1",
            "level": "info"
        })
    );
    let values = info["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0][0], "1700000000000000001");
    assert_eq!(
        values[0][1],
        format!(
            "msg=\"order placed\" severity=INFO trace_id={} span_id={} order.id=o-42",
            "ab".repeat(16),
            "cd".repeat(8)
        )
    );
    assert_eq!(
        values[1][1],
        "msg=\"stock checked\" severity=INFO order.id=o-42"
    );
    let error = streams
        .iter()
        .find(|s| s["stream"]["level"] == "error")
        .unwrap();
    assert!(
        error["values"][0][1]
            .as_str()
            .unwrap()
            .starts_with("msg=\"payment declined: \\\"card\\\"\" severity=ERROR")
    );
}

#[test]
fn json_format_structured_metadata_and_extra_labels() {
    let cfg = config(
        "endpoint: http://loki:3100/loki/api/v1/push\nformat: json\nstructured_metadata: true\ndefault_labels_enabled: {exporter: false, instance: false}\nlabels:\n  resource: {k8s.pod.name: \"\"}\n",
    );
    let body = push_request(&cfg, &logs());
    let stream = &body["streams"][0];
    assert_eq!(stream["stream"]["k8s_pod_name"], "order-7d9");
    assert!(stream["stream"].get("exporter").is_none());
    assert!(stream["stream"].get("instance").is_none());
    let entry = &stream["values"][0];
    let line: Json = serde_json::from_str(entry[1].as_str().unwrap()).unwrap();
    assert_eq!(line["body"], "payment declined: \"card\"");
    assert_eq!(line["traceid"], "ab".repeat(16));
    assert_eq!(line["attributes"]["order.id"], "o-42");
    assert_eq!(entry[2]["trace_id"], "ab".repeat(16));
}

#[test]
fn validation_needs_an_http_endpoint() {
    let node = Node::parse("t.yaml", "headers: {\"bad header\": x}\n").unwrap();
    let mut errors = Errors::default();
    assert!(registry::check::<LokiConfig>(&node, "exporters::loki", &mut errors).is_none());
    let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    // A missing key is reported at the component, naming the key.
    assert_eq!(paths, ["exporters::loki", "exporters::loki::headers"]);
    assert!(
        errors.errors[0]
            .message
            .starts_with("\"endpoint\" is required")
    );
}

/// A stand-in Loki on a real socket: records push bodies and answers with the queued
/// status codes (200 once they run out).
type Pushes = Arc<Mutex<Vec<(Json, Option<String>)>>>;

async fn fake_loki(statuses: Vec<u16>) -> (String, Pushes) {
    fake_loki_on(statuses, None).await
}

async fn fake_loki_on(
    statuses: Vec<u16>,
    tls: Option<crate::config::tls::TlsServerConfig>,
) -> (String, Pushes) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Pushes = Arc::default();
    let statuses = Arc::new(Mutex::new(statuses));
    let (s, st) = (seen.clone(), statuses.clone());
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Json>| {
                let (s, st) = (s.clone(), st.clone());
                async move {
                    let tenant = headers
                        .get("x-scope-orgid")
                        .map(|v| v.to_str().unwrap().to_string());
                    s.lock().unwrap().push((body, tenant));
                    let code = st.lock().unwrap().pop().unwrap_or(204);
                    StatusCode::from_u16(code).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match tls {
        None => {
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (format!("http://{addr}/loki/api/v1/push"), seen)
        }
        Some(server) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(server.rustls().unwrap());
            tokio::spawn(async move {
                use hyper_util::rt::{TokioExecutor, TokioIo};
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        // A client that does not trust us fails the handshake: nothing to serve.
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let svc = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    });
                }
            });
            (
                format!("https://localhost:{}/loki/api/v1/push", addr.port()),
                seen,
            )
        }
    }
}

/// A CA (ca.pem) and a certificate it signed for localhost (server.pem, server.key).
fn pki(dir: &std::path::Path) -> crate::config::tls::TlsServerConfig {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca_cert, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    crate::config::tls::TlsServerConfig {
        cert_file: dir.join("server.pem").display().to_string(),
        key_file: dir.join("server.key").display().to_string(),
        client_ca_file: None,
    }
}

fn ctx() -> BuildContext {
    BuildContext {
        id: ComponentId::parse("loki").unwrap(),
        telemetry: Arc::new(SelfTelemetry::default()),
        host: Arc::new(Host::default()),
    }
}

#[tokio::test]
async fn pushes_to_loki_and_classifies_failures() {
    let (url, seen) = fake_loki(vec![400, 503, 429]).await;
    let yaml = format!(
        "endpoint: {url}\ntenant_id: lab\nsending_queue: {{enabled: false}}\nretry_on_failure: {{enabled: false}}\n"
    );
    let node = Node::parse("t.yaml", &yaml).unwrap();
    let exporter = build(
        &registry::decoded_for::<LokiConfig>(&node),
        ctx(),
        Signal::Logs,
    )
    .unwrap();
    let send = || exporter.consume(Batch::Logs(logs()));
    let err: ConsumeError = send().await.unwrap_err();
    assert!(err.retryable, "429 is retryable: {err}");
    let err = send().await.unwrap_err();
    assert!(err.retryable, "503 is retryable: {err}");
    let err = send().await.unwrap_err();
    assert!(!err.retryable, "400 is permanent: {err}");
    send().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    let (body, tenant) = &seen[3];
    assert_eq!(tenant.as_deref(), Some("lab"));
    assert_eq!(body["streams"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_down_loki_is_a_retryable_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cfg = config(&format!("endpoint: http://{addr}/loki/api/v1/push\n"));
    let sender = LokiSender::new(&cfg).unwrap();
    let request = sender.prepare(&Batch::Logs(logs())).unwrap();
    let err = sender.send(&request).await.unwrap_err();
    assert!(err.retryable, "{}", err.message);
}

#[tokio::test]
async fn pushes_over_https_to_a_loki_signed_by_the_configured_ca() {
    let dir = std::env::temp_dir().join(format!("otel-lab-loki-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (url, seen) = fake_loki_on(vec![], Some(pki(&dir))).await;
    let exporter = |tls: &str| {
        let yaml = format!(
            "endpoint: {url}\n{tls}sending_queue: {{enabled: false}}\nretry_on_failure: {{enabled: false}}\n"
        );
        build(
            &registry::decoded_for::<LokiConfig>(&Node::parse("t.yaml", &yaml).unwrap()),
            ctx(),
            Signal::Logs,
        )
        .unwrap()
    };

    let ca = dir.join("ca.pem").display().to_string();
    exporter(&format!("tls: {{ca_file: {ca}}}\n"))
        .consume(Batch::Logs(logs()))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Without the CA the server is not trusted: a retryable failure, nothing pushed.
    let err = exporter("").consume(Batch::Logs(logs())).await.unwrap_err();
    assert!(err.retryable, "{err}");
    assert!(err.message.contains(&url), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}
