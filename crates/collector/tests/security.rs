//! TLS, mTLS and bearer tokens on receivers and exporters, with certificates made for the test.

mod common;

use collector::config::tls::TlsClientConfig;
use collector::exporters::helper::http_client::https_client;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, trace_service_client::TraceServiceClient,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const TRACE_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"secure"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"op","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A CA, a server certificate for localhost/127.0.0.1, a client certificate from the same CA,
/// and a client certificate from another CA.
fn pki() -> Pki {
    let dir = temp_dir("pki");
    let write = |p: &Path, s: String| std::fs::write(p, s).unwrap();
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("otel-lab test CA");
    let (other_cert, other_key) = ca("some other CA");
    write(&dir.join("ca.pem"), ca_cert.pem());
    let leaf =
        |names: Vec<String>, issuer: &rcgen::Certificate, issuer_key: &KeyPair, file: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, issuer, issuer_key)
                .unwrap();
            write(&dir.join(format!("{file}.pem")), cert.pem());
            write(&dir.join(format!("{file}.key")), key.serialize_pem());
        };
    leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        &ca_cert,
        &ca_key,
        "server",
    );
    leaf(vec!["client".into()], &ca_cert, &ca_key, "client");
    leaf(vec!["intruder".into()], &other_cert, &other_key, "intruder");
    Pki { dir }
}

async fn grpc_export(
    port: u16,
    tls: Option<ClientTlsConfig>,
    token: Option<&str>,
) -> Result<(), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Channel::from_shared(format!("{scheme}://localhost:{port}")).unwrap();
    if let Some(t) = tls {
        ep = ep.tls_config(t).map_err(|e| e.to_string())?;
    }
    let channel = ep.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    let mut req =
        tonic::Request::new(serde_json::from_str::<ExportTraceServiceRequest>(TRACE_JSON).unwrap());
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", t.parse().unwrap());
    }
    TraceServiceClient::new(channel)
        .export(req)
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mtls_accepts_the_right_client_and_refuses_the_others() {
    let pki = pki();
    let (addr, rec) = backend().await;
    let (grpc, health, metrics) = (free_port(), free_port(), free_port());
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        tls:
          cert_file: {server}
          key_file: {server_key}
          client_ca_file: {ca}
exporters:
  otlp: {{endpoint: "{addr}", tls: {{insecure: true}}}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#,
        server = pki.path("server.pem"),
        server_key = pki.path("server.key"),
        ca = pki.path("ca.pem"),
    ));
    c.wait_healthy(health).await;
    let ca = Certificate::from_pem(std::fs::read(pki.path("ca.pem")).unwrap());
    let identity = |n: &str| {
        Identity::from_pem(
            std::fs::read(pki.path(&format!("{n}.pem"))).unwrap(),
            std::fs::read(pki.path(&format!("{n}.key"))).unwrap(),
        )
    };
    let base = || {
        ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .domain_name("localhost")
    };

    grpc_export(grpc, Some(base().identity(identity("client"))), None)
        .await
        .expect("the right client certificate is accepted");
    assert!(
        grpc_export(grpc, Some(base()), None).await.is_err(),
        "no client certificate: refused"
    );
    assert!(
        grpc_export(grpc, Some(base().identity(identity("intruder"))), None)
            .await
            .is_err(),
        "a certificate from another CA: refused"
    );
    assert!(
        grpc_export(grpc, None, None).await.is_err(),
        "plain text on the TLS port: refused"
    );
    assert!(eventually(5, || rec.span_ids().len() == 1).await);
    assert!(c.child.try_wait().unwrap().is_none(), "still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_over_tls_with_a_bearer_token() {
    let pki = pki();
    let (addr, rec) = backend().await;
    let (http, health, metrics) = (free_port(), free_port(), free_port());
    let mut c = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
  bearertokenauth:
    token: s3cret-token
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
        tls: {{cert_file: {server}, key_file: {server_key}}}
        auth: {{authenticator: bearertokenauth}}
exporters:
  otlp: {{endpoint: "{addr}", tls: {{insecure: true}}}}
service:
  extensions: [health_check, bearertokenauth]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#,
        server = pki.path("server.pem"),
        server_key = pki.path("server.key"),
    ));
    c.wait_healthy(health).await;
    let client = https_client(&TlsClientConfig {
        ca_file: Some(pki.path("ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let send = |token: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut req = http::Request::post(format!("https://localhost:{http}/v1/traces"))
                .header("content-type", "application/json");
            if let Some(t) = token {
                req = req.header("authorization", t);
            }
            let resp = client
                .request(
                    req.body(http_body_util::Full::new(bytes::Bytes::from(TRACE_JSON)))
                        .unwrap(),
                )
                .await
                .unwrap();
            resp.status().as_u16()
        }
    };
    assert_eq!(send(Some("Bearer s3cret-token")).await, 200);
    assert_eq!(send(Some("Bearer wrong")).await, 401);
    assert_eq!(send(None).await, 401);
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http}/v1/traces"))
        .body(TRACE_JSON)
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != 200,
        "plain HTTP on the TLS port is not served"
    );
    assert!(
        eventually(5, || rec.span_ids().len() == 1).await,
        "only the authorised request arrives"
    );
    assert!(
        !c.logs().contains("s3cret-token"),
        "the token is never logged"
    );
    assert!(c.child.try_wait().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_sends_the_token_a_receiver_requires() {
    let (addr, rec) = backend().await;
    let token_file = temp_dir("token").join("token");
    std::fs::write(&token_file, "file-token\n").unwrap();
    // The gateway requires the token on gRPC.
    let (g_grpc, g_health, g_metrics) = (free_port(), free_port(), free_port());
    let mut gateway = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{g_health}"}}
  bearertokenauth/ingest:
    filename: {file}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{g_grpc}
        auth: {{authenticator: bearertokenauth/ingest}}
exporters:
  otlp: {{endpoint: "{addr}", tls: {{insecure: true}}}}
service:
  extensions: [health_check, bearertokenauth/ingest]
  telemetry: {{metrics: {{address: "127.0.0.1:{g_metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#,
        file = token_file.display()
    ));
    gateway.wait_healthy(g_health).await;
    assert!(
        grpc_export(g_grpc, None, None)
            .await
            .unwrap_err()
            .starts_with("Unauthenticated")
    );
    assert!(
        grpc_export(g_grpc, None, Some("Bearer nope"))
            .await
            .unwrap_err()
            .starts_with("Unauthenticated")
    );

    // An agent whose exporter carries the same token gets through.
    let (a_http, a_health, a_metrics) = (free_port(), free_port(), free_port());
    let mut agent = Collector::start(&format!(
        r#"
extensions:
  health_check: {{endpoint: "127.0.0.1:{a_health}"}}
  bearertokenauth:
    token: ${{env:LAB_TEST_TOKEN:-file-token}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{a_http}"}}
exporters:
  otlp:
    endpoint: 127.0.0.1:{g_grpc}
    tls: {{insecure: true}}
    auth: {{authenticator: bearertokenauth}}
service:
  extensions: [health_check, bearertokenauth]
  telemetry: {{metrics: {{address: "127.0.0.1:{a_metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"#
    ));
    agent.wait_healthy(a_health).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{a_http}/v1/traces"))
        .header("content-type", "application/json")
        .body(TRACE_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        eventually(10, || rec.span_ids().len() == 1).await,
        "agent → gateway with the token:\n{}\n{}",
        agent.logs(),
        gateway.logs()
    );
}
