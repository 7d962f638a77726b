//! Settings from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

/// inventory-service settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LISTEN_ADDR`, default `127.0.0.1:8082`.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`: a SQLite file path (a `sqlite://` prefix is accepted), default
    /// `inventory.db` in the working directory. Created, migrated and seeded on first start.
    pub database_path: PathBuf,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let listen = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8082".into());
        let listen_addr = listen.parse().with_context(|| {
            format!("LISTEN_ADDR={listen:?} is not an address like 127.0.0.1:8082")
        })?;
        let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| "inventory.db".into());
        let database_path = PathBuf::from(
            database
                .strip_prefix("sqlite://")
                .or_else(|| database.strip_prefix("sqlite:"))
                .unwrap_or(&database),
        );
        Ok(Self {
            listen_addr,
            database_path,
        })
    }
}
