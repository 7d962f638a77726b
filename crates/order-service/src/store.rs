//! The SQLite order store. rusqlite is blocking: every call runs on tokio's blocking pool
//! with the caller's span re-entered. Each statement runs through [`telemetry::db`]: a
//! database CLIENT span (query text with placeholders, never values; status Error and
//! `error.type` when it fails) and a `db.client.operation.duration` point. A request that
//! finds the one connection taken shows the wait as a `wait for connection` span.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension as _, params};
use telemetry::db::{DbClient, Statement};

use crate::domain::Order;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("stored order {id} is corrupt: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("database task failed: {0}")]
    Task(String),
}

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: [&str; 2] = [
    "
CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    customer_tier   TEXT NOT NULL,
    items_json      TEXT NOT NULL,
    total_cents     INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    trace_id        TEXT,
    payment_id      TEXT,
    reason          TEXT,
    http_status     INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      TEXT NOT NULL
);
",
    "
-- The transactional outbox: an event is written in the transaction that stores its order,
-- so there is no order without its event and no event for an order that was not stored;
-- the relay (outbox.rs) sends it to the queue and then deletes it.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type     TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    payload        TEXT NOT NULL,
    -- The trace context of the checkout that stored the order (traceparent, tracestate,
    -- baggage as a JSON object), so the send continues that trace.
    trace_context  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
",
];

/// An event waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub event_type: String,
    pub order_id: String,
    pub payload: String,
    pub trace_context: telemetry::messaging::MessageAttributes,
}

/// The event type of a created order.
pub const ORDER_PLACED: &str = "order.placed";

const SELECT_COLUMNS: &str = "id, status, customer_id, customer_tier, items_json, total_cents, currency, trace_id, payment_id, reason, created_at, http_status";

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    db: DbClient<rusqlite::Error>,
    /// The one connection, as a checkout sees it while `db_single_connection` is planted:
    /// taken for a whole checkout (see [`Store::check_out_connection`]).
    checked_out: Arc<tokio::sync::Mutex<()>>,
    /// Whether a created order's `order.placed` event is written to the outbox.
    publish_events: bool,
}

/// The connection checked out for a whole checkout; given back when dropped.
pub struct CheckedOutConnection {
    _slot: tokio::sync::OwnedMutexGuard<()>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database file.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let mut conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let applied: usize =
                conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
            for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
                let tx = conn.transaction()?;
                tx.execute_batch(migration)?;
                tx.pragma_update(None, "user_version", (version + 1) as i64)?;
                tx.commit()?;
                tracing::info!(version = version + 1, "applied database migration");
            }
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            db: DbClient::new("sqlite", telemetry::db::sqlite_error_type),
            checked_out: Arc::default(),
            publish_events: true,
        })
    }

    /// The same store, writing `order.placed` events to the outbox or not.
    pub fn publishing_events(mut self, publish: bool) -> Self {
        self.publish_events = publish;
        self
    }

    /// The planted `db_single_connection` problem: the checkout takes the database's only
    /// connection before its idempotency lookup and keeps it until the order is stored ("one
    /// connection per request, like a transaction"), so it stays taken during the calls to
    /// inventory, fraud check and payment, and concurrent checkouts run one at a time. A
    /// checkout that finds it taken shows the wait as a `wait for connection` span, as a
    /// statement waiting for the connection does. The normal path takes the connection only
    /// for each statement (see `blocking`).
    pub async fn check_out_connection(&self) -> CheckedOutConnection {
        let slot = match self.checked_out.clone().try_lock_owned() {
            Ok(slot) => slot,
            Err(_) => {
                use tracing::Instrument as _;
                self.checked_out
                    .clone()
                    .lock_owned()
                    .instrument(tracing::info_span!(
                        "db.connection.wait",
                        otel.name = telemetry::db::CONNECTION_WAIT_SPAN,
                        db.system.name = "sqlite",
                    ))
                    .await
            }
        };
        CheckedOutConnection { _slot: slot }
    }

    /// Runs `work` on the blocking pool inside the caller's span, holding the connection.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Db) -> Result<T, StoreError> + Send + 'static,
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

    /// Stores a new order. When `idempotency_key` is already taken (a concurrent retry won
    /// the race), returns the order stored under it instead.
    pub async fn insert(
        &self,
        order: Order,
        idempotency_key: Option<String>,
    ) -> Result<Order, StoreError> {
        let publish = self.publish_events;
        self.blocking(move |conn, db| {
            let items_json = serde_json::to_string(&order.items).map_err(|e| {
                StoreError::Corrupt {
                    id: order.id.clone(),
                    reason: e.to_string(),
                }
            })?;
            let sql = "INSERT INTO orders (id, status, customer_id, customer_tier, items_json, total_cents, currency, trace_id, payment_id, reason, idempotency_key, created_at, http_status) \
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                       ON CONFLICT (idempotency_key) DO NOTHING";
            // The order and its event commit together or not at all.
            let tx = conn.unchecked_transaction()?;
            let inserted = statement(db, "INSERT", sql, || {
                tx.prepare_cached(sql)?.execute(params![
                    order.id,
                    order.status,
                    order.customer_id,
                    order.customer_tier,
                    items_json,
                    order.total_cents,
                    order.currency,
                    order.trace_id,
                    order.payment_id,
                    order.reason,
                    idempotency_key,
                    order.created_at,
                    order.http_status,
                ])
            })?;
            let stored = match (inserted, idempotency_key) {
                (0, Some(key)) => select_by_key(&tx, db, &key)?.ok_or_else(|| StoreError::Corrupt {
                    id: order.id,
                    reason: "idempotency key conflict without a stored order".to_owned(),
                })?,
                _ => {
                    if publish && order.status == crate::domain::OrderStatus::Created.as_str() {
                        insert_order_placed(&tx, db, &order, &items_json)?;
                    }
                    order
                }
            };
            tx.commit()?;
            Ok(stored)
        })
        .await
    }

    /// Up to `max` events of the outbox, oldest first.
    pub async fn outbox(&self, max: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        self.blocking(move |conn, db| {
            let sql = "SELECT seq, event_type, order_id, payload, trace_context FROM outbox ORDER BY seq LIMIT ?1";
            let rows = db.statement(Statement::new("SELECT", "outbox", sql), || {
                conn.prepare_cached(sql)?
                    .query_map(params![max as i64], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()
            })?;
            rows.into_iter()
                .map(|(seq, event_type, order_id, payload, trace_context)| {
                    let trace_context = serde_json::from_str(&trace_context).map_err(|e| {
                        StoreError::Corrupt {
                            id: order_id.clone(),
                            reason: format!("outbox trace context: {e}"),
                        }
                    })?;
                    Ok(OutboxEvent {
                        seq,
                        event_type,
                        order_id,
                        payload,
                        trace_context,
                    })
                })
                .collect()
        })
        .await
    }

    /// Removes a sent event from the outbox.
    pub async fn outbox_sent(&self, seq: i64) -> Result<(), StoreError> {
        self.blocking(move |conn, db| {
            let sql = "DELETE FROM outbox WHERE seq = ?1";
            db.statement(Statement::new("DELETE", "outbox", sql), || {
                conn.prepare_cached(sql)?.execute(params![seq])
            })?;
            Ok(())
        })
        .await
    }

    pub async fn get(&self, id: String) -> Result<Option<Order>, StoreError> {
        self.blocking(move |conn, db| {
            let sql = format!("SELECT {SELECT_COLUMNS} FROM orders WHERE id = ?1");
            statement(db, "SELECT", &sql, || {
                conn.prepare_cached(&sql)?
                    .query_row(params![id], order_from_row)
                    .optional()
            })?
            .transpose()
        })
        .await
    }

    pub async fn by_idempotency_key(&self, key: String) -> Result<Option<Order>, StoreError> {
        self.blocking(move |conn, db| select_by_key(conn, db, &key))
            .await
    }
}

/// Writes the `order.placed` event of a created order, with the current trace context.
fn insert_order_placed(
    conn: &Connection,
    db: &Db,
    order: &Order,
    items_json: &str,
) -> Result<(), StoreError> {
    let payload = serde_json::json!({
        "order_id": order.id,
        "customer_id": order.customer_id,
        "payment_id": order.payment_id,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "items": serde_json::from_str::<serde_json::Value>(items_json).unwrap_or_default(),
    })
    .to_string();
    let trace_context = serde_json::to_string(&telemetry::messaging::inject(
        &opentelemetry::Context::current(),
    ))
    .expect("a map of strings serialises to JSON");
    let sql = "INSERT INTO outbox (event_type, order_id, payload, trace_context, created_at) \
               VALUES (?1, ?2, ?3, ?4, ?5)";
    db.statement(Statement::new("INSERT", "outbox", sql), || {
        conn.prepare_cached(sql)?.execute(params![
            ORDER_PLACED,
            order.id,
            payload,
            trace_context,
            order.created_at
        ])
    })?;
    Ok(())
}

fn select_by_key(conn: &Connection, db: &Db, key: &str) -> Result<Option<Order>, StoreError> {
    let sql = format!("SELECT {SELECT_COLUMNS} FROM orders WHERE idempotency_key = ?1");
    statement(db, "SELECT", &sql, || {
        conn.prepare_cached(&sql)?
            .query_row(params![key], order_from_row)
            .optional()
    })?
    .transpose()
}

/// Reads a row; the inner result reports a corrupt items column.
fn order_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Order, StoreError>> {
    let id: String = row.get(0)?;
    let items_json: String = row.get(4)?;
    let items = match serde_json::from_str(&items_json) {
        Ok(items) => items,
        Err(err) => {
            return Ok(Err(StoreError::Corrupt {
                id,
                reason: err.to_string(),
            }));
        }
    };
    Ok(Ok(Order {
        id,
        status: row.get(1)?,
        customer_id: row.get(2)?,
        customer_tier: row.get(3)?,
        items,
        total_cents: row.get(5)?,
        currency: row.get(6)?,
        trace_id: row.get(7)?,
        payment_id: row.get(8)?,
        reason: row.get(9)?,
        created_at: row.get(10)?,
        http_status: row.get(11)?,
    }))
}

type Db = DbClient<rusqlite::Error>;

/// Runs one statement on the `orders` table inside its database CLIENT span.
fn statement<T>(
    db: &Db,
    operation: &'static str,
    sql: &str,
    run: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    db.statement(Statement::new(operation, "orders", sql), run)
}
