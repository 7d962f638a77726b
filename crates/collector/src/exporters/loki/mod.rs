//! The `loki` exporter, after the Go collector-contrib's `lokiexporter`: sends log records
//! to Loki's push API (`POST /loki/api/v1/push`, JSON
//! `{"streams":[{"stream":{labels},"values":[["<unix ns>","<line>"]]}]}`), one stream per
//! distinct label set, through the shared sending queue and retry policy (HTTP 429 and 5xx
//! and connection failures are retried; other 4xx are permanent). An https:// endpoint is
//! verified against the system's roots or `tls.ca_file`, with `tls.cert_file`/`key_file`
//! for mTLS.
//!
//! Stream labels (Loki label names, dots become `_`):
//! - from the resource, when present: `service_name` (service.name),
//!   `deployment_environment` (deployment.environment.name, or the older
//!   deployment.environment), `k8s_namespace_name`, `cloud_platform`;
//! - Go's default labels, each switchable in `default_labels_enabled`: `exporter="OTLP"`,
//!   `job` (service.namespace/service.name), `instance` (service.instance.id), `level`
//!   (from the severity: trace, debug, info, warn, error, fatal);
//! - any resource or record attribute mapped in `labels.resource` / `labels.attributes`.
//!
//! Keep labels low-cardinality: ids belong in the line. The line is, by `format`:
//! `logfmt` (default) — `msg="<body>" severity=INFO trace_id=<hex> span_id=<hex>` followed
//! by the record's attributes as `key=value`, so Grafana can link trace ids and Loki's
//! `| logfmt` parses it; `json` — Go's shape (`body`, `traceid`, `spanid`, `severity`,
//! `attributes`, `resources`); `raw` — the body alone. With `structured_metadata: true`
//! trace_id and span_id are also sent as Loki structured metadata (Loki 2.9+/3.x with it
//! allowed).

use crate::component::{BuildContext, SharedConsumer};
use crate::config::GoDuration;
use crate::config::tls::TlsClientConfig;
use crate::exporters::helper::http_client::{HttpsClient, https_client, post};
use crate::exporters::helper::queue::{
    QueueConfig, QueuedExporter, RetryConfig, SendError, Sender,
};
use crate::exporters::prometheus::label_name;
use crate::pdata::attributes;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use anyhow::Context as _;
use async_trait::async_trait;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "loki",
    aliases: &[],
    description: "Sends logs to Grafana Loki's push API",
    signals: &[Signal::Logs],
    validate: registry::validate::<LokiConfig>,
    build,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    #[default]
    Logfmt,
    Json,
    Raw,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultLabels {
    /// `exporter="OTLP"`. Default true.
    pub exporter: bool,
    /// `job` from service.namespace/service.name. Default true.
    pub job: bool,
    /// `instance` from service.instance.id. Default true.
    pub instance: bool,
    /// `level` from the record's severity. Default true.
    pub level: bool,
}

impl Default for DefaultLabels {
    fn default() -> Self {
        DefaultLabels {
            exporter: true,
            job: true,
            instance: true,
            level: true,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabelMapping {
    /// Resource attribute → label name (empty: the attribute name with `.` → `_`).
    /// Default none.
    pub resource: BTreeMap<String, String>,
    /// Log record attribute → label name (empty: as above). Default none.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LokiConfig {
    /// The push URL, e.g. http://loki:3100/loki/api/v1/push. Required.
    pub endpoint: String,
    /// For an https:// endpoint: `ca_file` (a private CA), `cert_file` + `key_file` (mTLS).
    /// Default: the system's roots.
    pub tls: TlsClientConfig,
    /// Extra HTTP headers on every push. Default none.
    pub headers: BTreeMap<String, String>,
    /// Timeout of one push. Default 30s (Go's confighttp default).
    pub timeout: GoDuration,
    /// Sent as X-Scope-OrgID for multi-tenant Loki. Default none.
    pub tenant_id: Option<String>,
    /// logfmt | json | raw: how a record becomes a line. Default logfmt.
    pub format: LineFormat,
    /// Also send trace_id/span_id as structured metadata. Default false.
    pub structured_metadata: bool,
    /// Go's default labels. Default all enabled.
    pub default_labels_enabled: DefaultLabels,
    /// More attributes to promote to labels. Default none.
    pub labels: LabelMapping,
    /// The sending queue (as every exporter). Default enabled, 10 consumers, 1000 batches.
    pub sending_queue: QueueConfig,
    /// Retries of retryable failures. Default 5s initial, 30s max, 300s total.
    pub retry_on_failure: RetryConfig,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            endpoint: String::new(),
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            timeout: GoDuration::secs(30),
            tenant_id: None,
            format: LineFormat::Logfmt,
            structured_metadata: false,
            default_labels_enabled: DefaultLabels::default(),
            labels: LabelMapping::default(),
            sending_queue: QueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
        }
    }
}

impl ComponentConfig for LokiConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.endpoint.is_empty() {
            v.push((
                "endpoint",
                "\"endpoint\" is required: the push URL, e.g. http://loki:3100/loki/api/v1/push"
                    .into(),
            ));
        } else if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"))
            || self.endpoint.parse::<http::Uri>().is_err()
        {
            v.push((
                "endpoint",
                format!(
                    "expected an http:// or https:// URL, found {:?}",
                    self.endpoint
                ),
            ));
        }
        if self.tls.insecure_skip_verify {
            v.push((
                "tls",
                "insecure_skip_verify is not supported; give the server's CA with ca_file instead"
                    .into(),
            ));
        }
        v.extend(self.tls.problems());
        for k in self.headers.keys() {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                v.push(("headers", format!("{k:?} is not a valid HTTP header name")));
            }
        }
        for name in self
            .labels
            .resource
            .values()
            .chain(self.labels.attributes.values())
        {
            if !name.is_empty() && label_name(name) != *name {
                v.push(("labels", format!("{name:?} is not a valid Loki label name")));
            }
        }
        if self.timeout.0.is_zero() {
            v.push(("timeout", "must be greater than 0".into()));
        }
        v.extend(self.sending_queue.problems());
        v.extend(self.retry_on_failure.problems());
        v
    }
}

fn build(decoded: &Decoded, ctx: BuildContext, signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: LokiConfig = registry::typed::<LokiConfig>(decoded).clone();
    let sender = LokiSender::new(&cfg)?;
    QueuedExporter::new(
        &ctx,
        signal,
        sender,
        cfg.sending_queue.clone(),
        cfg.retry_on_failure.clone(),
    )
    .map(|e| e as SharedConsumer)
}

pub struct LokiSender {
    client: HttpsClient,
    url: http::Uri,
    headers: http::HeaderMap,
    cfg: LokiConfig,
}

impl LokiSender {
    pub fn new(cfg: &LokiConfig) -> anyhow::Result<LokiSender> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        for (k, v) in &cfg.headers {
            headers.insert(
                http::HeaderName::from_bytes(k.as_bytes())?,
                v.parse().with_context(|| format!("header {k}"))?,
            );
        }
        if let Some(t) = &cfg.tenant_id {
            headers.insert("x-scope-orgid", t.parse().context("tenant_id")?);
        }
        Ok(LokiSender {
            client: https_client(&cfg.tls)?,
            url: cfg.endpoint.parse().context("endpoint")?,
            headers,
            cfg: cfg.clone(),
        })
    }
}

#[async_trait]
impl Sender for LokiSender {
    /// Loki's push request as JSON; none when no record made a stream.
    type Request = Option<bytes::Bytes>;

    fn prepare(&self, batch: &Batch) -> Result<Self::Request, SendError> {
        let Batch::Logs(rl) = batch else {
            return Err(SendError::permanent("the loki exporter takes logs only"));
        };
        let body = push_request(&self.cfg, rl);
        if body["streams"].as_array().is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        Ok(Some(
            serde_json::to_vec(&body)
                .expect("JSON values serialise")
                .into(),
        ))
    }

    async fn send(&self, body: &Self::Request) -> Result<(), SendError> {
        let Some(body) = body else {
            return Ok(());
        };
        let mut req = http::Request::post(self.url.clone())
            .body(http_body_util::Full::new(body.clone()))
            .map_err(|e| SendError::permanent(format!("{}: {e}", self.url)))?;
        *req.headers_mut() = self.headers.clone();
        post(&self.client, req, self.cfg.timeout.0)
            .await
            .map_err(|e| e.classify(&self.url, |s| s == 429 || s >= 500))
    }
}

fn level(log: &LogRecord) -> Option<&'static str> {
    Some(match log.severity_number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => match log.severity_text.to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" | "information" => "info",
            "warn" | "warning" => "warn",
            "error" => "error",
            "fatal" | "critical" => "fatal",
            _ => return None,
        },
    })
}

/// Resource attributes that always become labels when present, with their label names.
const RESOURCE_LABELS: [(&str, &str); 5] = [
    ("service.name", "service_name"),
    ("deployment.environment.name", "deployment_environment"),
    ("deployment.environment", "deployment_environment"),
    ("k8s.namespace.name", "k8s_namespace_name"),
    ("cloud.platform", "cloud_platform"),
];

fn resource_labels(cfg: &LokiConfig, res: &[KeyValue]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (attr, label) in RESOURCE_LABELS {
        if let Some(v) = attributes::get_text(res, attr).filter(|v| !v.is_empty()) {
            labels.entry(label.to_string()).or_insert(v);
        }
    }
    let d = &cfg.default_labels_enabled;
    if d.exporter {
        labels.insert("exporter".into(), "OTLP".into());
    }
    if d.job
        && let Some(name) = attributes::get_text(res, "service.name")
    {
        let job = match attributes::get_text(res, "service.namespace").filter(|n| !n.is_empty()) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        labels.insert("job".into(), job);
    }
    if d.instance
        && let Some(i) = attributes::get_text(res, "service.instance.id")
    {
        labels.insert("instance".into(), i);
    }
    for (attr, label) in &cfg.labels.resource {
        if let Some(v) = attributes::get_text(res, attr) {
            labels.insert(
                if label.is_empty() {
                    label_name(attr)
                } else {
                    label.clone()
                },
                v,
            );
        }
    }
    labels
}

fn logfmt_value(s: &str) -> String {
    if !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=' || c == '\\')
    {
        s.to_string()
    } else {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    }
}

fn line(cfg: &LokiConfig, log: &LogRecord, res: &[KeyValue]) -> String {
    let body = log
        .body
        .as_ref()
        .map(attributes::as_text)
        .unwrap_or_default();
    let trace_id = (!log.trace_id.is_empty()).then(|| hex::encode(&log.trace_id));
    let span_id = (!log.span_id.is_empty()).then(|| hex::encode(&log.span_id));
    match cfg.format {
        LineFormat::Raw => body,
        LineFormat::Logfmt => {
            let mut parts = vec![format!("msg={}", logfmt_value(&body))];
            if !log.severity_text.is_empty() {
                parts.push(format!("severity={}", logfmt_value(&log.severity_text)));
            }
            if let Some(t) = &trace_id {
                parts.push(format!("trace_id={t}"));
            }
            if let Some(s) = &span_id {
                parts.push(format!("span_id={s}"));
            }
            for kv in &log.attributes {
                if let Some(v) = &kv.value {
                    parts.push(format!(
                        "{}={}",
                        kv.key.replace(|c: char| c.is_whitespace() || c == '=', "_"),
                        logfmt_value(&attributes::as_text(v))
                    ));
                }
            }
            parts.join(" ")
        }
        LineFormat::Json => {
            let attrs = |kvs: &[KeyValue]| -> Map<String, Json> {
                kvs.iter()
                    .filter_map(|kv| {
                        kv.value
                            .as_ref()
                            .map(|v| (kv.key.clone(), Json::String(attributes::as_text(v))))
                    })
                    .collect()
            };
            let mut m = Map::new();
            m.insert("body".into(), Json::String(body));
            if let Some(t) = trace_id {
                m.insert("traceid".into(), Json::String(t));
            }
            if let Some(s) = span_id {
                m.insert("spanid".into(), Json::String(s));
            }
            if !log.severity_text.is_empty() {
                m.insert("severity".into(), Json::String(log.severity_text.clone()));
            }
            if !log.attributes.is_empty() {
                m.insert("attributes".into(), Json::Object(attrs(&log.attributes)));
            }
            if !res.is_empty() {
                m.insert("resources".into(), Json::Object(attrs(res)));
            }
            Json::Object(m).to_string()
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The push API body for a batch of logs: records grouped into streams by label set.
pub fn push_request(cfg: &LokiConfig, resource_logs: &[ResourceLogs]) -> Json {
    let mut streams: BTreeMap<BTreeMap<String, String>, Vec<Json>> = BTreeMap::new();
    for rl in resource_logs {
        let empty = Vec::new();
        let res = rl.resource.as_ref().map_or(&empty, |r| &r.attributes);
        let base = resource_labels(cfg, res);
        for sl in &rl.scope_logs {
            for log in &sl.log_records {
                let mut labels = base.clone();
                if cfg.default_labels_enabled.level
                    && let Some(l) = level(log)
                {
                    labels.insert("level".into(), l.into());
                }
                for (attr, label) in &cfg.labels.attributes {
                    if let Some(v) = attributes::get_text(&log.attributes, attr) {
                        labels.insert(
                            if label.is_empty() {
                                label_name(attr)
                            } else {
                                label.clone()
                            },
                            v,
                        );
                    }
                }
                let ts = [log.time_unix_nano, log.observed_time_unix_nano]
                    .into_iter()
                    .find(|t| *t > 0)
                    .unwrap_or_else(now_nanos);
                let mut entry = vec![
                    Json::String(ts.to_string()),
                    Json::String(line(cfg, log, res)),
                ];
                if cfg.structured_metadata {
                    let mut meta = Map::new();
                    if !log.trace_id.is_empty() {
                        meta.insert("trace_id".into(), Json::String(hex::encode(&log.trace_id)));
                    }
                    if !log.span_id.is_empty() {
                        meta.insert("span_id".into(), Json::String(hex::encode(&log.span_id)));
                    }
                    if !meta.is_empty() {
                        entry.push(Json::Object(meta));
                    }
                }
                streams.entry(labels).or_default().push(Json::Array(entry));
            }
        }
    }
    let streams: Vec<Json> = streams
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels, "values": values}))
        .collect();
    json!({ "streams": streams })
}

#[cfg(test)]
mod tests;
