//! The `health_check` extension (the Go collector's healthcheckextension): an HTTP endpoint
//! answering 200 once every pipeline runs and 503 while starting or shutting down.

use crate::component::{BuildContext, Extension, Host};
use crate::config::Node;
use crate::registry::{self, ComponentConfig, ExtensionFactory};
use anyhow::Context;
use async_trait::async_trait;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "health_check",
    description: "HTTP health endpoint: 200 when all pipelines run, 503 otherwise",
    validate: |n, p, e| {
        registry::check::<HealthCheckConfig>(n, p, e);
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// host:port to serve on. Default 127.0.0.1:13133.
    pub endpoint: String,
    /// URL path. Default /.
    pub path: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            endpoint: "127.0.0.1:13133".into(),
            path: "/".into(),
        }
    }
}

impl ComponentConfig for HealthCheckConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Err(e) = crate::receivers::otlp::check_endpoint(&self.endpoint) {
            v.push(("endpoint", e));
        }
        if !self.path.starts_with('/') {
            v.push(("path", format!("\"{}\" must start with /", self.path)));
        }
        v
    }
}

fn build(node: &Node, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: HealthCheckConfig = registry::parse(node, &format!("extensions::{}", ctx.id))?;
    Ok(Arc::new(HealthCheck {
        id: ctx.id.to_string(),
        cfg,
        host: ctx.host,
        task: Mutex::new(None),
    }))
}

struct HealthCheck {
    id: String,
    cfg: HealthCheckConfig,
    host: Arc<Host>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl Extension for HealthCheck {
    async fn start(&self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.cfg.endpoint)
            .await
            .with_context(|| {
                format!(
                    "extensions::{}: cannot listen on {}",
                    self.id, self.cfg.endpoint
                )
            })?;
        let host = self.host.clone();
        let app = axum::Router::new().route(
            &self.cfg.path,
            axum::routing::get(move || {
                let host = host.clone();
                async move {
                    if host.ready.load(Ordering::SeqCst) {
                        (
                            StatusCode::OK,
                            axum::Json(serde_json::json!({"status": "Server available"})),
                        )
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(serde_json::json!({"status": "Server not available"})),
                        )
                    }
                }
            }),
        );
        tracing::info!(extension = %self.id, address = %self.cfg.endpoint, "health check listening");
        *self.task.lock().expect("task lock") = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(())
    }

    async fn shutdown(&self) {
        if let Some(t) = self.task.lock().expect("task lock").take() {
            t.abort();
        }
    }
}
