//! The `otlp` receiver (the Go collector's otlpreceiver): OTLP over gRPC and over HTTP
//! (protobuf and JSON, gzip/zstd), for traces, metrics and logs.
//!
//! ```yaml
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:                      # present (even empty) = enabled
//!         endpoint: 127.0.0.1:4317
//!       http:
//!         endpoint: 127.0.0.1:4318
//! ```

mod grpc;
mod http;

use crate::component::{BuildContext, ConsumeError, Consumers, Receiver};
use crate::config::tls::TlsServerConfig;
use crate::config::{Errors, Node, Value};
use crate::extensions::bearertokenauth::{self, AuthSettings, BearerToken};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ReceiverFactory};
use crate::telemetry::ReceiverMetrics;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const FACTORY: ReceiverFactory = ReceiverFactory {
    kind: "otlp",
    description: "Receives OTLP over gRPC and HTTP (protobuf and JSON, gzip/zstd) for traces, metrics and logs",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate,
    build,
};

/// `protocols.grpc`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// host:port to listen on. Default 127.0.0.1:4317 (loopback only; say 0.0.0.0:4317 to
    /// accept from other hosts).
    pub endpoint: String,
    /// Largest accepted message after decompression, in MiB. Default 4.
    pub max_recv_msg_size_mib: u64,
    /// Serve TLS (and require client certificates with client_ca_file).
    pub tls: Option<TlsServerConfig>,
    /// Require a token: `auth: {authenticator: bearertokenauth}`.
    pub auth: Option<AuthSettings>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: "127.0.0.1:4317".into(),
            max_recv_msg_size_mib: 4,
            tls: None,
            auth: None,
        }
    }
}

/// `protocols.http`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// host:port to listen on. Default 127.0.0.1:4318.
    pub endpoint: String,
    /// Largest accepted request body in bytes, on the wire and after decompression.
    /// Default 20971520 (20 MiB), as the Go collector.
    pub max_request_body_size: usize,
    /// Paths for each signal. Defaults /v1/traces, /v1/metrics, /v1/logs.
    pub traces_url_path: String,
    pub metrics_url_path: String,
    pub logs_url_path: String,
    /// CORS for browser clients; off unless allowed_origins is set.
    pub cors: Option<CorsConfig>,
    /// Serve TLS (and require client certificates with client_ca_file).
    pub tls: Option<TlsServerConfig>,
    /// Require a token: `auth: {authenticator: bearertokenauth}`.
    pub auth: Option<AuthSettings>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: "127.0.0.1:4318".into(),
            max_request_body_size: 20 * 1024 * 1024,
            traces_url_path: "/v1/traces".into(),
            metrics_url_path: "/v1/metrics".into(),
            logs_url_path: "/v1/logs".into(),
            cors: None,
            tls: None,
            auth: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to send (e.g. http://localhost:3000); "*" allows any.
    pub allowed_origins: Vec<String>,
    /// Extra request headers allowed besides the CORS-safelisted ones and Content-Type.
    pub allowed_headers: Vec<String>,
    /// Seconds a browser may cache the preflight answer. Default 0 (not sent).
    pub max_age: u64,
}

impl ComponentConfig for GrpcConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Err(e) = crate::config::endpoint::check_endpoint(&self.endpoint) {
            v.push(("endpoint", e));
        }
        if self.max_recv_msg_size_mib == 0 {
            v.push(("max_recv_msg_size_mib", "must be at least 1".into()));
        }
        if let Some(t) = &self.tls {
            v.extend(t.problems());
        }
        v
    }
}

impl ComponentConfig for HttpConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Err(e) = crate::config::endpoint::check_endpoint(&self.endpoint) {
            v.push(("endpoint", e));
        }
        if self.max_request_body_size == 0 {
            v.push(("max_request_body_size", "must be greater than 0".into()));
        }
        if let Some(t) = &self.tls {
            v.extend(t.problems());
        }
        for (k, p) in [
            ("traces_url_path", &self.traces_url_path),
            ("metrics_url_path", &self.metrics_url_path),
            ("logs_url_path", &self.logs_url_path),
        ] {
            if !p.starts_with('/') {
                v.push((k, format!("\"{p}\" must start with /")));
            }
        }
        v
    }
}

#[derive(Clone, Debug)]
struct Parsed {
    grpc: Option<GrpcConfig>,
    http: Option<HttpConfig>,
}

fn parse_config(node: &Node, path: &str, errors: &mut Errors) -> Option<Parsed> {
    let mut parsed = Parsed {
        grpc: None,
        http: None,
    };
    let before = errors.errors.len();
    for (k, _) in node.entries() {
        if k.name != "protocols" {
            errors.error(
                Some(k.loc.clone()),
                format!("{path}::{}", k.name),
                format!("unknown key \"{}\"; valid keys here: protocols", k.name),
            );
        }
    }
    let Some(protocols) = node.get("protocols") else {
        errors.error(
            Some(node.loc.clone()),
            path,
            "must specify at least one protocol under protocols: (grpc and/or http)",
        );
        return None;
    };
    if !matches!(protocols.value, Value::Map(_)) {
        errors.error(
            Some(protocols.loc.clone()),
            format!("{path}::protocols"),
            "expected a mapping with grpc and/or http",
        );
        return None;
    }
    for (k, n) in protocols.entries() {
        let p = format!("{path}::protocols::{}", k.name);
        match k.name.as_str() {
            "grpc" => parsed.grpc = registry::check::<GrpcConfig>(n, &p, errors),
            "http" => parsed.http = registry::check::<HttpConfig>(n, &p, errors),
            other => errors.error(
                Some(k.loc.clone()),
                p,
                format!("unknown protocol \"{other}\"; valid protocols: grpc, http"),
            ),
        }
    }
    if protocols.entries().is_empty() {
        errors.error(
            Some(protocols.loc.clone()),
            format!("{path}::protocols"),
            "must specify at least one protocol (grpc and/or http)",
        );
    }
    (errors.errors.len() == before).then_some(parsed)
}

fn validate(node: &Node, path: &str, errors: &mut Errors) -> Option<Decoded> {
    parse_config(node, path, errors).map(|parsed| Arc::new(parsed) as Decoded)
}

fn build(
    decoded: &Decoded,
    ctx: BuildContext,
    consumers: Consumers,
) -> anyhow::Result<Arc<dyn Receiver>> {
    let parsed: &Parsed = registry::typed(decoded);

    let (stop_tx, _) = watch::channel(false);
    Ok(Arc::new(OtlpReceiver {
        id: ctx.id.to_string(),
        host: ctx.host.clone(),
        grpc: parsed.grpc.clone(),
        http: parsed.http.clone(),
        sink: Sink::new(&ctx, consumers),
        stop: stop_tx,
        tasks: Mutex::new(Vec::new()),
    }))
}

/// Where decoded requests go, with the receiver's accepted/refused counters per transport.
#[derive(Clone)]
pub(crate) struct Sink {
    consumers: Consumers,
    metrics: Arc<[[Option<ReceiverMetrics>; 3]; 2]>,
}

#[derive(Clone, Copy)]
pub(crate) enum Transport {
    Grpc = 0,
    Http = 1,
}

impl Sink {
    fn new(ctx: &BuildContext, consumers: Consumers) -> Sink {
        let id = ctx.id.to_string();
        let mk = |t: &str, s: Signal| {
            consumers
                .get(s)
                .map(|_| ReceiverMetrics::new(&ctx.telemetry, &id, t, s))
        };
        let metrics = [
            [
                mk("grpc", Signal::Traces),
                mk("grpc", Signal::Metrics),
                mk("grpc", Signal::Logs),
            ],
            [
                mk("http", Signal::Traces),
                mk("http", Signal::Metrics),
                mk("http", Signal::Logs),
            ],
        ];
        Sink {
            consumers,
            metrics: Arc::new(metrics),
        }
    }

    pub(crate) fn accepts(&self, signal: Signal) -> bool {
        self.consumers.get(signal).is_some()
    }

    /// Hands a decoded batch to the pipelines and counts the outcome.
    pub(crate) async fn push(
        &self,
        transport: Transport,
        batch: Batch,
    ) -> Result<(), ConsumeError> {
        let signal = batch.signal();
        let Some(consumer) = self.consumers.get(signal) else {
            return Err(ConsumeError::permanent(format!(
                "this receiver is not configured for {signal}"
            )));
        };
        let n = batch.item_count() as u64;
        let m = self.metrics[transport as usize][signal as usize].as_ref();
        if n == 0 {
            return Ok(());
        }
        let r = consumer.consume(batch).await;
        if let Some(m) = m {
            match &r {
                Ok(()) => m.accepted.add(n),
                Err(_) => m.refused.add(n),
            }
        }
        r
    }
}

struct OtlpReceiver {
    id: String,
    host: Arc<crate::component::Host>,
    grpc: Option<GrpcConfig>,
    http: Option<HttpConfig>,
    sink: Sink,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[async_trait]
impl Receiver for OtlpReceiver {
    async fn start(&self) -> anyhow::Result<()> {
        let auth =
            |a: &Option<AuthSettings>, proto: &str| -> anyhow::Result<Option<Arc<BearerToken>>> {
                a.as_ref()
                    .map(|a| {
                        bearertokenauth::lookup(
                            &self.host,
                            a,
                            &format!("receivers::{}::protocols::{proto}", self.id),
                        )
                    })
                    .transpose()
            };
        if let Some(cfg) = &self.grpc {
            let token = auth(&cfg.auth, "grpc")?;
            let h = grpc::serve(
                &self.host,
                &self.id,
                cfg,
                token,
                self.sink.clone(),
                self.stop.subscribe(),
            )
            .await?;
            self.tasks.lock().expect("tasks lock").push(h);
        }
        if let Some(cfg) = &self.http {
            let token = auth(&cfg.auth, "http")?;
            let h = http::serve(
                &self.host,
                &self.id,
                cfg,
                token,
                self.sink.clone(),
                self.stop.subscribe(),
            )
            .await?;
            self.tasks.lock().expect("tasks lock").push(h);
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        for t in tasks {
            // In-flight requests get a few seconds to finish before we move on.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}
