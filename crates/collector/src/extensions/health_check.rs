//! The `health_check` extension (the Go collector's healthcheckextension): an HTTP endpoint
//! answering 200 once every pipeline runs and 503 while starting or shutting down — and,
//! with `check_collector_pipeline.enabled`, 503 while an exporter has been failing without
//! a single success for longer than `check_collector_pipeline.interval`, so a collector whose
//! backend is gone does not look healthy.

use crate::component::{BuildContext, Extension, Host};
use crate::extensions::HttpEndpoint;
use crate::registry::{self, ComponentConfig, Decoded, ExtensionFactory};
use async_trait::async_trait;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "health_check",
    description: "HTTP health endpoint: 200 when all pipelines run, 503 otherwise",
    validate: registry::validate::<HealthCheckConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// host:port to serve on. Default 127.0.0.1:13133.
    pub endpoint: String,
    /// URL path. Default /.
    pub path: String,
    pub check_collector_pipeline: PipelineCheck,
    /// Also serve `POST /reload`, which reloads the configuration files as SIGHUP does and
    /// answers with the outcome (200, or 422 with every problem of the new config). Not in
    /// the Go collector. Default false: anyone who reaches the endpoint could reload.
    pub reload: bool,
}

/// `check_collector_pipeline`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineCheck {
    /// Report unhealthy while exports fail. Default false.
    pub enabled: bool,
    /// How long an exporter may fail continuously before the collector is unhealthy.
    /// Default 5m.
    pub interval: crate::config::GoDuration,
    /// Go's count of failures within `interval`. Accepted and ignored (with a warning):
    /// here an exporter that has failed without a success for `interval` is unhealthy.
    pub exporter_failure_threshold: u64,
}

impl Default for PipelineCheck {
    fn default() -> Self {
        PipelineCheck {
            enabled: false,
            interval: crate::config::GoDuration::secs(300),
            exporter_failure_threshold: 5,
        }
    }
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "127.0.0.1:13133".into(),
            path: "/".into(),
            check_collector_pipeline: PipelineCheck::default(),
            reload: false,
        }
    }
}

impl ComponentConfig for HealthCheckConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Err(e) = crate::config::endpoint::check_endpoint(&self.endpoint) {
            v.push(("endpoint", e));
        }
        if !self.path.starts_with('/') {
            v.push(("path", format!("\"{}\" must start with /", self.path)));
        }
        if self.reload && self.path == "/reload" {
            v.push((
                "path",
                "/reload is where `reload: true` serves reloads; choose another path".into(),
            ));
        }
        v
    }

    fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        vec![(
            "check_collector_pipeline::exporter_failure_threshold",
            "here an exporter is unhealthy once it has failed without a success for `interval`",
        )]
    }
}

fn health(host: &Host, check: &PipelineCheck) -> (StatusCode, axum::Json<serde_json::Value>) {
    if !host.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "Server not available"})),
        );
    }
    if check.enabled {
        let failing: Vec<serde_json::Value> = host
            .failing_exporters
            .lock()
            .expect("failing exporters lock")
            .iter()
            .filter(|(_, (since, _))| since.elapsed() >= check.interval.0)
            .map(|(id, (since, error))| serde_json::json!({"exporter": id, "failing_for_seconds": since.elapsed().as_secs(), "last_error": error}))
            .collect();
        if !failing.is_empty() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "Exporters failing", "failing": failing})),
            );
        }
    }
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "Server available"})),
    )
}

fn build(decoded: &Decoded, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: HealthCheckConfig = registry::typed::<HealthCheckConfig>(decoded).clone();
    Ok(Arc::new(HealthCheck {
        id: ctx.id.to_string(),
        cfg,
        host: ctx.host,
        http: HttpEndpoint::default(),
    }))
}

struct HealthCheck {
    id: String,
    cfg: HealthCheckConfig,
    host: Arc<Host>,
    http: HttpEndpoint,
}

#[async_trait]
impl Extension for HealthCheck {
    async fn start(&self) -> anyhow::Result<()> {
        let host = self.host.clone();
        let check = self.cfg.check_collector_pipeline.clone();
        let mut app = axum::Router::new().route(
            &self.cfg.path,
            axum::routing::get(move || {
                let host = host.clone();
                let check = check.clone();
                async move { health(&host, &check) }
            }),
        );
        if self.cfg.reload {
            let host = self.host.clone();
            app = app.route(
                "/reload",
                axum::routing::post(move || {
                    let host = host.clone();
                    async move {
                        match host.request_reload().await {
                            Ok(report) => (StatusCode::OK, report),
                            Err(report) => (StatusCode::UNPROCESSABLE_ENTITY, report),
                        }
                    }
                }),
            );
        }
        self.http
            .start(&self.host, &self.id, &self.cfg.endpoint, app)
            .await?;
        tracing::info!(extension = %self.id, address = %self.cfg.endpoint, "health check listening");
        Ok(())
    }

    async fn shutdown(&self) {
        self.http.stop();
    }
}
