//! Settings from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

/// payment-service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN_ADDR`, default `127.0.0.1:8081`.
    pub listen_addr: SocketAddr,
    /// `PAYMENT_GATEWAY_TIMEOUT_MS`, default 1500: how long an authorisation waits for the
    /// simulated card gateway before answering 504.
    pub gateway_timeout: Duration,
    /// `DATABASE_URL`: the SQLite file of the captures made (a `sqlite://` prefix is
    /// accepted), default `payments.db` in the working directory.
    pub database_path: std::path::PathBuf,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into());
        let listen_addr = listen.parse().with_context(|| {
            format!("LISTEN_ADDR={listen:?} is not an address like 127.0.0.1:8081")
        })?;
        let timeout = std::env::var("PAYMENT_GATEWAY_TIMEOUT_MS").unwrap_or_else(|_| "1500".into());
        let gateway_timeout = Duration::from_millis(timeout.parse().with_context(|| {
            format!("PAYMENT_GATEWAY_TIMEOUT_MS={timeout:?} is not a number of milliseconds")
        })?);
        let database = std::env::var("DATABASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "payments.db".into());
        let database_path = std::path::PathBuf::from(
            database
                .strip_prefix("sqlite://")
                .or_else(|| database.strip_prefix("sqlite:"))
                .unwrap_or(&database),
        );
        Ok(Self {
            listen_addr,
            gateway_timeout,
            database_path,
        })
    }
}
