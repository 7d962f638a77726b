//! The captures this service made, in SQLite: what makes a capture idempotent. A message
//! handled twice (the queue delivers at least once) or a retried request must not take the
//! customer's money twice, and the gateway is only asked once per payment.
//!
//! A capture is claimed (`capturing`) before the gateway is called and marked `captured`
//! after; a failed call gives the claim back. A second request for a payment whose capture
//! is under way is told so (409, retry later) rather than calling the gateway again. A claim
//! older than [`ABANDONED_AFTER_SECONDS`] was left by a process that stopped in the middle
//! (a gateway call takes well under a second and the handler runs to its end even when the
//! caller hangs up), so the next request takes it over.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};
use telemetry::db::{DbClient, Statement};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS captures (
    payment_id   TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('capturing', 'captured')),
    claimed_at   TEXT NOT NULL DEFAULT (datetime('now')),
    captured_at  TEXT
);
";

/// Age after which a `capturing` claim is taken to be abandoned.
pub const ABANDONED_AFTER_SECONDS: u32 = 30;

/// Where a payment's capture stands when a capture is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody captured it: this request does, and must `finish` or `give_back`.
    Claimed,
    /// Another request is capturing it now.
    InProgress,
    /// Captured before.
    AlreadyCaptured,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    db: DbClient<rusqlite::Error>,
}

impl Store {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            db: DbClient::new("sqlite", telemetry::db::sqlite_error_type),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &DbClient<rusqlite::Error>) -> Result<T, StoreError>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let db = self.db.clone();
        telemetry::spawn_blocking(move || {
            let conn = db.lock(&conn);
            work(&conn, &db)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Claims the capture of `payment_id`, or says who has it.
    pub async fn claim(&self, payment_id: String, order_id: String) -> Result<Claim, StoreError> {
        self.blocking(move |conn, db| {
            let sql = "INSERT INTO captures (payment_id, order_id, state) VALUES (?1, ?2, 'capturing') \
                       ON CONFLICT (payment_id) DO NOTHING";
            let inserted = db.statement(Statement::new("INSERT", "captures", sql), || {
                conn.prepare_cached(sql)?.execute(params![payment_id, order_id])
            })?;
            if inserted == 1 {
                return Ok(Claim::Claimed);
            }
            let sql = "UPDATE captures SET claimed_at = datetime('now') \
                       WHERE payment_id = ?1 AND state = 'capturing' AND claimed_at < datetime('now', ?2)";
            let abandoned = format!("-{ABANDONED_AFTER_SECONDS} seconds");
            let taken_over = db.statement(Statement::new("UPDATE", "captures", sql), || {
                conn.prepare_cached(sql)?.execute(params![payment_id, abandoned])
            })?;
            if taken_over == 1 {
                tracing::warn!(payment.id = %payment_id, "taking over an abandoned capture claim");
                return Ok(Claim::Claimed);
            }
            let sql = "SELECT state FROM captures WHERE payment_id = ?1";
            let state: Option<String> = db.statement(Statement::new("SELECT", "captures", sql), || {
                conn.prepare_cached(sql)?
                    .query_row(params![payment_id], |r| r.get(0))
                    .optional()
            })?;
            Ok(match state.as_deref() {
                Some("captured") => Claim::AlreadyCaptured,
                _ => Claim::InProgress,
            })
        })
        .await
    }

    /// The gateway captured it.
    pub async fn finish(&self, payment_id: String) -> Result<(), StoreError> {
        self.blocking(move |conn, db| {
            let sql = "UPDATE captures SET state = 'captured', captured_at = datetime('now') WHERE payment_id = ?1";
            db.statement(Statement::new("UPDATE", "captures", sql), || {
                conn.prepare_cached(sql)?.execute(params![payment_id])
            })?;
            Ok(())
        })
        .await
    }

    /// The gateway call failed: the next request may try again.
    pub async fn give_back(&self, payment_id: String) -> Result<(), StoreError> {
        self.blocking(move |conn, db| {
            let sql = "DELETE FROM captures WHERE payment_id = ?1 AND state = 'capturing'";
            db.statement(Statement::new("DELETE", "captures", sql), || {
                conn.prepare_cached(sql)?.execute(params![payment_id])
            })?;
            Ok(())
        })
        .await
    }
}
