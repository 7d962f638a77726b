//! Extensions: services beside the pipelines.
pub mod bearertokenauth;
pub mod file_storage;
pub mod health_check;
pub mod jaeger_query;
pub mod jaeger_storage;

use anyhow::Context as _;
use std::sync::Mutex;

/// An extension's HTTP endpoint: bound at start, so a taken address fails the start with
/// the extension's name, then served in the background until shutdown.
#[derive(Default)]
pub(crate) struct HttpEndpoint(Mutex<Option<tokio::sync::watch::Sender<bool>>>);

impl HttpEndpoint {
    pub(crate) async fn start(
        &self,
        host: &crate::component::Host,
        id: &str,
        endpoint: &str,
        app: axum::Router,
    ) -> anyhow::Result<()> {
        let listener = host
            .listeners
            .bind_tokio(endpoint)
            .with_context(|| format!("extensions::{id}: cannot listen on {endpoint}"))?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
        });
        *self.0.lock().expect("endpoint lock") = Some(stop);
        Ok(())
    }

    /// Stops accepting; requests in flight are answered in the background (a `POST /reload`
    /// in flight is answered after the reload that stops its own endpoint).
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.0.lock().expect("endpoint lock").take() {
            let _ = stop.send(true);
        }
    }
}
