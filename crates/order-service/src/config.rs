//! Settings from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::event_queue::EventQueue;

/// order-service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN_ADDR`, default `127.0.0.1:8080`.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`: a SQLite file path (a `sqlite://` prefix is accepted), default
    /// `orders.db` in the working directory; created and migrated on first start.
    pub database_path: PathBuf,
    /// `INVENTORY_URL`, default `http://127.0.0.1:8082`.
    pub inventory_url: String,
    /// `PAYMENT_URL`, default `http://127.0.0.1:8081`.
    pub payment_url: String,
    /// `FRAUD_CHECK_URL`: the fraud-check Lambda's function URL, default
    /// `http://127.0.0.1:9000`. The order is POSTed to this URL as it is.
    pub fraud_check_url: String,
    /// `ORDERS_QUEUE`, default `orders`: where `order.placed` events go. A name is a queue
    /// of the local queue file `QUEUE_DATABASE` (default `queue.db` beside the orders
    /// database); an `http(s)://` URL is an Amazon SQS queue URL; `off` publishes none (no
    /// outbox rows, no relay), for a deployment with no consumer.
    pub orders_queue: Option<EventQueue>,
    /// `DOWNSTREAM_TIMEOUT_MS`, default 5000: per call to inventory, fraud check and
    /// payment (longer than payment-service's own 1500 ms gateway deadline).
    pub downstream_timeout: Duration,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = env_or("LISTEN_ADDR", "127.0.0.1:8080");
        let listen_addr = listen.parse().with_context(|| {
            format!("LISTEN_ADDR={listen:?} is not an address like 127.0.0.1:8080")
        })?;
        let database = env_or("DATABASE_URL", "orders.db");
        let database_path = PathBuf::from(
            database
                .strip_prefix("sqlite://")
                .or_else(|| database.strip_prefix("sqlite:"))
                .unwrap_or(&database),
        );
        let queue_path = match std::env::var("QUEUE_DATABASE") {
            Ok(path) if !path.trim().is_empty() => PathBuf::from(path),
            _ => database_path.with_file_name("queue.db"),
        };
        let timeout = env_or("DOWNSTREAM_TIMEOUT_MS", "5000");
        let downstream_timeout = Duration::from_millis(timeout.parse().with_context(|| {
            format!("DOWNSTREAM_TIMEOUT_MS={timeout:?} is not a number of milliseconds")
        })?);
        let orders_queue = match env_or("ORDERS_QUEUE", "orders").trim() {
            "off" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Some(EventQueue::Sqs {
                    url: url.to_owned(),
                })
            }
            name => Some(EventQueue::Local {
                path: queue_path,
                name: name.to_owned(),
            }),
        };
        Ok(Self {
            listen_addr,
            database_path,
            orders_queue,
            inventory_url: env_or("INVENTORY_URL", "http://127.0.0.1:8082")
                .trim_end_matches('/')
                .to_owned(),
            payment_url: env_or("PAYMENT_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_owned(),
            fraud_check_url: env_or("FRAUD_CHECK_URL", "http://127.0.0.1:9000"),
            downstream_timeout,
        })
    }
}
