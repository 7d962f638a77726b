//! Builds the application (store, router, listener) so that `main` and the tests start it
//! the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use opentelemetry::KeyValue;
use opentelemetry::metrics::ObservableGauge;
use telemetry::faults::Faults;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::routes;
use crate::store::{StockLevels, Store};

/// Shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub faults: Faults,
    /// Taken by every request while the `inventory_lock` scenario is active.
    pub scenario_lock: Arc<tokio::sync::Mutex<()>>,
}

/// The router with every route, the fault middleware and the telemetry server layer.
pub fn router(state: AppState) -> Router {
    let faults = state.faults.clone();
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/inventory", get(routes::products::list))
        .route("/inventory/{sku}", get(routes::products::show))
        .route("/inventory/reserve", post(routes::reservations::reserve))
        .route("/inventory/release", post(routes::reservations::release))
        .route("/inventory/commit", post(routes::reservations::commit))
        .with_state(state)
        .merge(faults.router())
        .layer(faults.layer())
        .layer(telemetry::http_server::layer())
}

fn register_stock_gauge(levels: StockLevels) -> ObservableGauge<i64> {
    opentelemetry::global::meter("inventory-service")
        .i64_observable_gauge("inventory.stock_level")
        .with_unit("{item}")
        .with_description("Units in stock per sku.")
        .with_callback(move |observer| {
            let levels = levels
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (sku, stock) in levels.iter() {
                observer.observe(*stock, &[KeyValue::new("inventory.sku", sku.clone())]);
            }
        })
        .build()
}

/// A bound, ready-to-run inventory-service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    _stock_gauge: ObservableGauge<i64>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let faults = Faults::from_env()?;
        let store = Store::open(&config.database_path, faults.clone())
            .await
            .with_context(|| format!("opening database {}", config.database_path.display()))?;
        let stock_gauge = register_stock_gauge(store.stock_levels());
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let state = AppState {
            store,
            faults,
            scenario_lock: Arc::default(),
        };
        Ok(Self {
            listener,
            router: router(state),
            _stock_gauge: stock_gauge,
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
        tracing::info!(addr = %self.listener.local_addr()?, "inventory-service listening");
        telemetry::http_server::serve(self.listener, self.router, shutdown)
            .await
            .context("serving HTTP")
    }
}
