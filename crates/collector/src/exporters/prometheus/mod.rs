//! The `prometheus` exporter, after the Go collector-contrib's `prometheusexporter`: serves
//! the metrics it receives on a scrape endpoint (`/metrics`, and `/`), translated per the
//! OpenTelemetry specification "Prometheus and OpenMetrics Compatibility":
//!
//! - names sanitised, unit suffixes added (`ms` → `_milliseconds`, `s` → `_seconds`,
//!   `By` → `_bytes`, `1` → `_ratio` on gauges, `{...}` annotations dropped), `_total` on
//!   monotonic sums; `namespace` prefixes every name;
//! - gauges and non-monotonic sums as gauges, monotonic sums as counters, explicit-bucket
//!   histograms as `_bucket{le}`/`_sum`/`_count`, summaries with `quantile`; delta
//!   temporality is accumulated into cumulative values. Exponential histograms are not
//!   exported (Prometheus text has no form for them; convert them upstream);
//! - `job` = `service.namespace/service.name` (or `service.name`), `instance` =
//!   `service.instance.id`, `otel_scope_name`/`otel_scope_version` from the scope, the
//!   other resource attributes on one `target_info` series per resource, or on every
//!   series with `resource_to_telemetry_conversion: {enabled: true}`;
//! - series not updated for `metric_expiration` (5m) disappear.
//!
//! A scrape gets Prometheus text 0.0.4, or — with `enable_open_metrics: true` and an
//! `Accept` asking for `application/openmetrics-text` — OpenMetrics 1.0 with exemplars
//! (`trace_id`, `span_id`) on counters and buckets and the closing `# EOF`. The listener is
//! bound at build, so a port in use is a startup error, and closed at shutdown.

mod names;
mod store;

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::GoDuration;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use crate::telemetry::Counter;
use anyhow::Context as _;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use store::{Settings, Store};
use tokio::sync::watch;

pub use names::{label_name, metric_name};

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "prometheus",
    aliases: &[],
    description: "Serves received metrics on a Prometheus scrape endpoint",
    signals: &[Signal::Metrics],
    validate: registry::validate::<PrometheusConfig>,
    build,
};

const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceToTelemetry {
    /// Put every resource attribute on every series as a label. Default false.
    pub enabled: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// host:port to serve scrapes on (`:8889` means every interface). Default
    /// 127.0.0.1:8889.
    pub endpoint: String,
    /// Prefix of every metric name (`lab` → `lab_http_...`). Default none.
    pub namespace: String,
    /// Labels added to every series. Default none.
    pub const_labels: BTreeMap<String, String>,
    /// Write each sample's timestamp. Default false (Prometheus uses the scrape time).
    pub send_timestamps: bool,
    /// Series not updated for this long are no longer served. Default 5m.
    pub metric_expiration: GoDuration,
    /// Resource attributes as labels on every series. Default disabled.
    pub resource_to_telemetry_conversion: ResourceToTelemetry,
    /// Serve OpenMetrics 1.0 (with exemplars) to scrapers that ask for it. Default false.
    pub enable_open_metrics: bool,
    /// Add unit and `_total` suffixes to names. Default true.
    pub add_metric_suffixes: bool,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            endpoint: "127.0.0.1:8889".into(),
            namespace: String::new(),
            const_labels: BTreeMap::new(),
            send_timestamps: false,
            metric_expiration: GoDuration::secs(300),
            resource_to_telemetry_conversion: ResourceToTelemetry::default(),
            enable_open_metrics: false,
            add_metric_suffixes: true,
        }
    }
}

impl ComponentConfig for PrometheusConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let addr = crate::config::endpoint::listen_address(&self.endpoint);
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            v.push((
                "endpoint",
                format!(
                    "expected host:port such as 127.0.0.1:8889, found {:?}",
                    self.endpoint
                ),
            ));
        }
        for k in self.const_labels.keys() {
            if label_name(k) != *k || k.starts_with("__") {
                v.push((
                    "const_labels",
                    format!("{k:?} is not a valid Prometheus label name (letters, digits and _, not starting with a digit or __)"),
                ));
            }
        }
        if self.metric_expiration.0.is_zero() {
            v.push(("metric_expiration", "must be greater than 0".into()));
        }
        v
    }
}

struct Shared {
    settings: Settings,
    store: Mutex<Store>,
    open_metrics: bool,
    send_timestamps: bool,
}

pub struct PrometheusExporter {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    sent: Counter,
}

fn build(decoded: &Decoded, ctx: BuildContext, signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: PrometheusConfig = registry::typed::<PrometheusConfig>(decoded).clone();
    let id = ctx.id.to_string();
    let sent = crate::telemetry::ExporterMetrics::new(&ctx.telemetry, &id, signal).sent;
    Ok(PrometheusExporter::start(&cfg, sent, &ctx.host.listeners)?)
}

impl PrometheusExporter {
    /// Binds the endpoint and starts serving scrapes; must run inside a tokio runtime.
    pub fn start(
        cfg: &PrometheusConfig,
        sent: Counter,
        listeners: &crate::config::endpoint::Listeners,
    ) -> anyhow::Result<Arc<PrometheusExporter>> {
        let addr = crate::config::endpoint::listen_address(&cfg.endpoint);
        let listener = listeners
            .bind(&addr)
            .with_context(|| format!("prometheus exporter cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shared = Arc::new(Shared {
            settings: Settings {
                namespace: cfg.namespace.clone(),
                const_labels: cfg
                    .const_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                resource_to_labels: cfg.resource_to_telemetry_conversion.enabled,
                add_suffixes: cfg.add_metric_suffixes,
                expiration: cfg.metric_expiration.0,
            },
            store: Mutex::new(Store::default()),
            open_metrics: cfg.enable_open_metrics,
            send_timestamps: cfg.send_timestamps,
        });
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(scrape))
            .route("/", axum::routing::get(scrape))
            .with_state(shared.clone());
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.changed().await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "prometheus exporter server failed");
            }
        });
        tracing::info!(endpoint = %local, "prometheus exporter serving /metrics");
        Ok(Arc::new(PrometheusExporter {
            shared,
            addr: local,
            stop,
            server: tokio::sync::Mutex::new(Some(server)),
            sent,
        }))
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The exposition a scrape would get now.
    pub fn render(&self, open_metrics: bool) -> String {
        let mut store = self.shared.store.lock().expect("prometheus store lock");
        store.expire(self.shared.settings.expiration);
        store.render(open_metrics, self.shared.send_timestamps)
    }
}

async fn scrape(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> impl IntoResponse {
    let wants_om = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let open_metrics = shared.open_metrics && wants_om;
    let body = {
        let mut store = shared.store.lock().expect("prometheus store lock");
        store.expire(shared.settings.expiration);
        store.render(open_metrics, shared.send_timestamps)
    };
    let content_type = if open_metrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    };
    ([(header::CONTENT_TYPE, content_type)], body)
}

#[async_trait]
impl Consumer for PrometheusExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.consume_shared(&batch).await
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        let Batch::Metrics(rm) = batch else {
            return Err(ConsumeError::permanent(
                "the prometheus exporter takes metrics only",
            ));
        };
        let n = batch.item_count() as u64;
        self.shared
            .store
            .lock()
            .expect("prometheus store lock")
            .ingest(&self.shared.settings, rm);
        self.sent.add(n);
        Ok(())
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(mut server) = self.server.lock().await.take() {
            // Graceful shutdown waits for open keep-alive connections; a scraper holding
            // one must not hold the collector's shutdown.
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests;
