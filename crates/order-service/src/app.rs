//! Builds the application (store, clients, router, listener) so that `main` and the tests
//! start it the same way.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use telemetry::faults::Faults;
use tokio::net::TcpListener;

use crate::clients::Downstream;
use crate::config::Config;
use crate::event_queue::Sender;
use crate::metrics::OrderMetrics;
use crate::outbox::Outbox;
use crate::routes;
use crate::store::Store;

/// Shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub downstream: Downstream,
    pub faults: Faults,
    pub metrics: OrderMetrics,
    /// Where created orders' events go; `None` when `ORDERS_QUEUE=off`.
    pub outbox: Option<Outbox>,
}

/// The router with every route, the fault middleware and the telemetry server layer.
pub fn router(state: AppState) -> Router {
    let faults = state.faults.clone();
    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/orders", post(routes::orders::create))
        .route("/orders/{id}", get(routes::orders::show))
        .with_state(state)
        .merge(faults.router())
        .layer(faults.layer())
        .layer(telemetry::http_server::layer())
}

/// A bound, ready-to-run order-service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    outbox: Option<Outbox>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::open(&config.database_path)
            .await
            .with_context(|| format!("opening database {}", config.database_path.display()))?;
        let faults = Faults::from_env()?;
        let outbox = match &config.orders_queue {
            Some(queue) => {
                let sender = Sender::open(queue).await?;
                // The relay reads and deletes outbox rows on a connection of its own: on the
                // checkouts' one connection its statements would queue checkouts behind them
                // (`wait for connection`), the very symptom of the db_single_connection
                // lessons. SQLite (WAL) serialises the two writers itself.
                let relay_store = Store::open(&config.database_path).await.with_context(|| {
                    format!(
                        "opening database {} for the outbox relay",
                        config.database_path.display()
                    )
                })?;
                Some(Outbox::new(relay_store, sender, faults.clone()))
            }
            None => {
                tracing::info!("ORDERS_QUEUE=off: no order.placed events are published");
                None
            }
        };
        let store = store.publishing_events(outbox.is_some());
        let state = AppState {
            outbox: outbox.clone(),
            store,
            downstream: Downstream::new(&config),
            faults,
            metrics: OrderMetrics::new(),
        };
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        Ok(Self {
            listener,
            router: router(state),
            outbox,
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
        tracing::info!(addr = %self.listener.local_addr()?, "order-service listening");
        // Stopped with the server: what it has not sent stays in the outbox for next time.
        let relay = self.outbox.map(|outbox| tokio::spawn(outbox.relay()));
        let served = telemetry::http_server::serve(self.listener, self.router, shutdown)
            .await
            .context("serving HTTP");
        if let Some(relay) = relay {
            relay.abort();
        }
        served
    }
}
