//! Builds the application (router, state, listener) so that `main` and the tests start it
//! the same way.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use telemetry::faults::Faults;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::gateway::CardGateway;
use crate::metrics::PaymentMetrics;
use crate::routes;
use crate::store::Store;

/// Shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: CardGateway,
    pub store: Store,
    pub faults: Faults,
    pub metrics: PaymentMetrics,
}

/// The router with every route, the fault middleware and the telemetry server layer.
pub fn router(state: AppState) -> Router {
    let faults = state.faults.clone();
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/payments", post(routes::payments::create))
        .route("/payments/{id}/void", post(routes::payments::void))
        .route("/payments/{id}/capture", post(routes::payments::capture))
        .with_state(state)
        .merge(faults.router())
        .layer(faults.layer())
        .layer(telemetry::http_server::layer())
}

/// A bound, ready-to-run payment-service.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::open(&config.database_path)
            .await
            .with_context(|| format!("opening database {}", config.database_path.display()))?;
        let state = AppState {
            gateway: CardGateway::new(config.gateway_timeout),
            store,
            faults: Faults::from_env()?,
            metrics: PaymentMetrics::new(),
        };
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        Ok(Self {
            listener,
            router: router(state),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "payment-service listening");
        telemetry::http_server::serve(self.listener, self.router, shutdown)
            .await
            .context("serving HTTP")
    }
}
