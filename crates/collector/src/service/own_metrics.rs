//! The collector's own metrics (`service::telemetry::metrics`), served at `/metrics` in the
//! Prometheus text format.

use crate::telemetry::SelfTelemetry;
use anyhow::Context;
use std::sync::Arc;

pub(super) async fn serve_own_metrics(
    listeners: &crate::config::endpoint::Listeners,
    addr: &str,
    telemetry: Arc<SelfTelemetry>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::{Router, http::header, routing::get};
    let listener = listeners.bind_tokio(addr).with_context(|| {
        format!("service::telemetry::metrics::address: cannot listen on {addr}")
    })?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let t = telemetry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    t.render(),
                )
            }
        }),
    );
    tracing::info!(address = %addr, "serving the collector's own metrics at /metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "own metrics server stopped");
        }
    }))
}
