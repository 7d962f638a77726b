//! `otlp_http` (alias `otlphttp`): OTLP over HTTP, protobuf or JSON, with the exporters'
//! shared HTTP client.

use super::{ALL, compression_problem};
use crate::component::{BuildContext, SharedConsumer};
use crate::config::GoDuration;
use crate::config::tls::TlsClientConfig;
use crate::exporters::helper::http_client::{HttpsClient, https_client, post};
use crate::exporters::helper::queue::{
    QueueConfig, QueuedExporter, RetryConfig, SendError, Sender,
};
use crate::extensions::bearertokenauth::{self, AuthSettings};
use crate::otlp_codec::{self, Encoding};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `otlp_http` / `otlphttp`
pub const HTTP_FACTORY: ExporterFactory = ExporterFactory {
    kind: "otlp_http",
    aliases: &["otlphttp"],
    description: "Sends OTLP over HTTP (protobuf, or JSON on request) to another collector or a backend",
    signals: ALL,
    validate: registry::validate::<HttpExporterConfig>,
    build: build_http,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpExporterConfig {
    /// Base URL; /v1/traces, /v1/metrics and /v1/logs are appended (e.g. http://gateway:4318).
    pub endpoint: String,
    /// Full URLs per signal, used as given, overriding endpoint.
    pub traces_endpoint: Option<String>,
    pub metrics_endpoint: Option<String>,
    pub logs_endpoint: Option<String>,
    pub tls: TlsClientConfig,
    /// Extra HTTP headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// gzip (default), zstd or none.
    pub compression: String,
    /// proto (default) or json.
    pub encoding: String,
    /// Deadline of one request. Default 30s, as in Go.
    pub timeout: GoDuration,
    pub sending_queue: QueueConfig,
    pub retry_on_failure: RetryConfig,
    /// Send a token: `auth: {authenticator: bearertokenauth}`.
    pub auth: Option<AuthSettings>,
}

impl Default for HttpExporterConfig {
    fn default() -> Self {
        HttpExporterConfig {
            endpoint: String::new(),
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            tls: TlsClientConfig::default(),
            headers: BTreeMap::new(),
            compression: "gzip".into(),
            encoding: "proto".into(),
            timeout: GoDuration::secs(30),
            sending_queue: QueueConfig::default(),
            retry_on_failure: RetryConfig::default(),
            auth: None,
        }
    }
}

impl HttpExporterConfig {
    fn url(&self, signal: Signal) -> Option<String> {
        let explicit = match signal {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        };
        if let Some(u) = explicit {
            return Some(u.clone());
        }
        (!self.endpoint.is_empty())
            .then(|| format!("{}/v1/{}", self.endpoint.trim_end_matches('/'), signal))
    }
}

impl ComponentConfig for HttpExporterConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.endpoint.is_empty()
            && self.traces_endpoint.is_none()
            && self.metrics_endpoint.is_none()
            && self.logs_endpoint.is_none()
        {
            v.push((
                "",
                "endpoint is required (base URL such as http://gateway:4318)".into(),
            ));
        }
        for (k, u) in [
            ("endpoint", Some(&self.endpoint)),
            ("traces_endpoint", self.traces_endpoint.as_ref()),
            ("metrics_endpoint", self.metrics_endpoint.as_ref()),
            ("logs_endpoint", self.logs_endpoint.as_ref()),
        ] {
            if let Some(u) = u
                && !u.is_empty()
                && let Err(e) = reqwest::Url::parse(u)
                    .map_err(|e| e.to_string())
                    .and_then(|url| {
                        if matches!(url.scheme(), "http" | "https") {
                            Ok(())
                        } else {
                            Err("the scheme must be http or https".into())
                        }
                    })
            {
                v.push((k, format!("\"{u}\" is not a valid URL: {e}")));
            }
        }
        if !matches!(self.encoding.as_str(), "proto" | "json") {
            v.push((
                "encoding",
                format!("unknown encoding \"{}\"; use proto or json", self.encoding),
            ));
        }
        if self.tls.insecure_skip_verify {
            v.push(("tls", "insecure_skip_verify is not supported by otlp_http; give the server's CA with ca_file instead".into()));
        }
        v.extend(compression_problem(&self.compression));
        v.extend(self.tls.problems());
        v.extend(self.sending_queue.problems());
        v.extend(self.retry_on_failure.problems());
        v
    }
}

fn build_http(
    decoded: &Decoded,
    ctx: BuildContext,
    signal: Signal,
) -> anyhow::Result<SharedConsumer> {
    let cfg: HttpExporterConfig = registry::typed::<HttpExporterConfig>(decoded).clone();
    let url = cfg
        .url(signal)
        .with_context(|| format!("no URL for {signal}: set endpoint or {signal}_endpoint"))?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in &cfg.headers {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes())?,
            v.parse().with_context(|| format!("header {k}"))?,
        );
    }
    if let Some(a) = &cfg.auth {
        let token = bearertokenauth::lookup(&ctx.host, a, &format!("exporters::{}", ctx.id))?;
        headers.insert(
            http::header::AUTHORIZATION,
            token
                .header_value()
                .parse()
                .context("token is not a valid header value")?,
        );
    }
    let sender = HttpSender {
        client: https_client(&cfg.tls)?,
        url: url.parse().with_context(|| format!("invalid URL {url}"))?,
        headers,
        timeout: cfg.timeout.0,
        encoding: if cfg.encoding == "json" {
            Encoding::Json
        } else {
            Encoding::Protobuf
        },
        compression: cfg.compression.clone(),
    };
    QueuedExporter::new(
        &ctx,
        signal,
        sender,
        cfg.sending_queue,
        cfg.retry_on_failure,
    )
    .map(|e| e as SharedConsumer)
}

struct HttpSender {
    client: HttpsClient,
    url: http::Uri,
    headers: http::HeaderMap,
    timeout: Duration,
    encoding: Encoding,
    compression: String,
}

#[async_trait]
impl Sender for HttpSender {
    /// The body, encoded and compressed once, and its content encoding.
    type Request = (bytes::Bytes, Option<&'static str>);

    fn prepare(&self, batch: &Batch) -> Result<Self::Request, SendError> {
        let raw = otlp_codec::encode(batch, self.encoding);
        Ok(match self.compression.as_str() {
            "gzip" => (otlp_codec::gzip(&raw).into(), Some("gzip")),
            "zstd" => (otlp_codec::zstd_compress(&raw).into(), Some("zstd")),
            _ => (raw.into(), None),
        })
    }

    async fn send(&self, (body, content_encoding): &Self::Request) -> Result<(), SendError> {
        let mut req = http::Request::post(self.url.clone())
            .header("content-type", self.encoding.content_type());
        if let Some(encoding) = content_encoding {
            req = req.header("content-encoding", *encoding);
        }
        let mut req = req
            .body(http_body_util::Full::new(body.clone()))
            .map_err(|e| SendError::permanent(format!("{}: {e}", self.url)))?;
        req.headers_mut().extend(self.headers.clone());
        post(&self.client, req, self.timeout)
            .await
            .map_err(|e| e.classify(&self.url, |s| matches!(s, 429 | 502 | 503 | 504)))
    }
}
