//! The SQLite store: products with their stock, and per-order reservations.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool with the caller's
//! `tracing` span re-entered there. Each statement runs through [`telemetry::db`]: a CLIENT
//! span named like `UPDATE products` carrying the database semantic conventions (query text
//! as written, placeholders, never values; status Error and `error.type` when it fails) and
//! a `db.client.operation.duration` point. There is one connection: a request that finds it
//! taken shows the wait as a `wait for connection` span before its statements.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use telemetry::db::{DbClient, Statement};
use telemetry::faults::Faults;
use tracing::Instrument as _;

use crate::domain::{ReservationOrder, Sku};

/// A product row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// One reserved line, priced at reservation time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReservedLine {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// A successful reservation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reservation {
    pub order_id: String,
    pub items: Vec<ReservedLine>,
    pub total_cents: i64,
}

/// One line given back by a release.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReleasedLine {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown sku {0}")]
    UnknownSku(String),
    #[error("insufficient stock for sku {sku}: requested {requested}, available {available}")]
    InsufficientStock {
        sku: String,
        requested: u32,
        available: i64,
    },
    #[error("order {0} holds no reservation to commit")]
    NoReservation(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Stock per sku as last written, read by the `inventory.stock_level` gauge without
/// touching the database from the metrics thread.
pub type StockLevels = Arc<RwLock<HashMap<String, i64>>>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    db: Db,
    stock_levels: StockLevels,
}

/// What every statement runs through: the telemetry and the slow-query fault.
#[derive(Clone)]
struct Db {
    client: DbClient<rusqlite::Error>,
    faults: Faults,
}

impl Db {
    /// Runs one statement inside its database CLIENT span.
    fn statement<T>(
        &self,
        operation: &'static str,
        collection: &'static str,
        sql: &str,
        run: impl FnOnce() -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.client
            .statement(Statement::new(operation, collection, sql), || {
                // Inside the span: the simulated slowness is the database's, so the span
                // and db.client.operation.duration show it.
                if self.faults.scenario("slow_inventory_queries") {
                    std::thread::sleep(slow_query_delay());
                }
                run()
            })
    }
}

const MIGRATIONS: &str = "
CREATE TABLE IF NOT EXISTS products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT NOT NULL,
    sku      TEXT NOT NULL REFERENCES products (sku),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    released INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, sku)
);
-- A reservation the fulfilment committed: its stock has shipped and is never released.
CREATE TABLE IF NOT EXISTS commitments (
    order_id     TEXT PRIMARY KEY,
    committed_at TEXT NOT NULL
);
";

/// The catalogue a fresh database starts with: (sku, name, price in cents, stock).
const SEED_PRODUCTS: [(&str, &str, i64, i64); 20] = [
    ("KB-001", "Mechanical keyboard (brown switches)", 8999, 120),
    ("MS-002", "Wireless ergonomic mouse", 4599, 200),
    ("MN-003", "27\" 4K monitor", 32999, 40),
    ("HD-004", "Noise-cancelling headphones", 19999, 75),
    ("WC-005", "1080p webcam", 5999, 150),
    ("DK-006", "USB-C docking station", 14999, 60),
    ("CB-007", "USB-C cable 2 m", 1299, 500),
    ("SD-008", "1 TB NVMe SSD", 8999, 90),
    ("RM-009", "32 GB DDR5 memory kit", 10999, 80),
    ("LS-010", "Aluminium laptop stand", 3999, 140),
    ("DM-011", "Desk mat (large)", 2499, 300),
    ("MC-012", "USB condenser microphone", 12999, 45),
    ("SP-013", "Bluetooth speaker", 6999, 110),
    ("CH-014", "Ergonomic office chair", 34999, 20),
    ("LP-015", "LED desk lamp", 3499, 160),
    ("PB-016", "20000 mAh power bank", 4999, 180),
    ("HB-017", "7-port USB hub", 2999, 220),
    ("EC-018", "External 4 TB hard drive", 11999, 55),
    ("GP-019", "Wireless game controller", 5999, 130),
    ("TB-020", "Drawing tablet", 7999, 35),
];

/// The delivery a line that leaves `left` of `sku` brings with it: the product's opening stock
/// when `left` falls below its reorder point (a quarter of it), else nothing. The supplier
/// delivers at once, so a long workshop or load test never empties the shelves and turns
/// every order into a 409; out of stock stays what one order asking for more than the shelf
/// holds gets.
fn replenishment(sku: &str, left: i64) -> i64 {
    SEED_PRODUCTS
        .iter()
        .find(|(s, ..)| *s == sku)
        .map_or(
            0,
            |&(.., opening)| if left < opening / 4 { opening } else { 0 },
        )
}

/// Extra time per statement while `slow_inventory_queries` is active.
fn slow_query_delay() -> Duration {
    Duration::from_millis(rand::rng().random_range(150..=400))
}

impl Store {
    /// Opens (creating if needed) the database file, migrates it and seeds an empty catalogue.
    pub async fn open(path: &Path, faults: Faults) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let conn = Connection::open(&path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.execute_batch(MIGRATIONS)?;
            let count: i64 = conn.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0))?;
            if count == 0 {
                let mut insert = conn.prepare(
                    "INSERT INTO products (sku, name, price_cents, stock) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (sku, name, price, stock) in SEED_PRODUCTS {
                    insert.execute(params![sku, name, price, stock])?;
                }
                tracing::info!(products = SEED_PRODUCTS.len(), "seeded an empty catalogue");
            }
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            db: Db {
                client: DbClient::new("sqlite", telemetry::db::sqlite_error_type),
                faults,
            },
            stock_levels: StockLevels::default(),
        };
        // Its own trace, named for what it is, rather than a bare `SELECT products` root.
        let products = store
            .list_products()
            .instrument(tracing::info_span!("inventory.load_stock_levels"))
            .await?;
        *store.levels_mut() = products.into_iter().map(|p| (p.sku, p.stock)).collect();
        Ok(store)
    }

    /// The stock levels the gauge reports.
    pub fn stock_levels(&self) -> StockLevels {
        self.stock_levels.clone()
    }

    fn levels_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, i64>> {
        self.stock_levels
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` on the blocking pool inside the caller's span, holding the connection.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let db = self.db.clone();
        telemetry::spawn_blocking(move || {
            // Waiting for another request's transaction shows in the trace as its own span.
            let mut conn = db.client.lock(&conn);
            work(&mut conn, &db)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    pub async fn list_products(&self) -> Result<Vec<Product>, StoreError> {
        self.blocking(|conn, db| {
            let sql = "SELECT sku, name, price_cents, stock FROM products ORDER BY sku";
            Ok(db.statement("SELECT", "products", sql, || {
                let mut stmt = conn.prepare_cached(sql)?;
                stmt.query_map([], product_from_row)?
                    .collect::<Result<Vec<_>, _>>()
            })?)
        })
        .await
    }

    pub async fn product(&self, sku: Sku) -> Result<Option<Product>, StoreError> {
        self.blocking(move |conn, db| Ok(select_product(conn, db, sku.as_str())?))
            .await
    }

    /// Reserves every line or none. Reserving again for an order that holds a reservation
    /// returns that reservation unchanged (a retried request must not take stock twice).
    pub async fn reserve(&self, order: ReservationOrder) -> Result<Reservation, StoreError> {
        let reservation = self
            .blocking(move |conn, db| {
                let tx = conn.transaction()?;
                let existing = active_reservation(&tx, db, &order.order_id)?;
                let take_stock = existing.is_empty();
                let lines: Vec<(String, u32)> = if take_stock {
                    order
                        .lines
                        .iter()
                        .map(|(sku, qty)| (sku.as_str().to_owned(), *qty))
                        .collect()
                } else {
                    tracing::info!(order.id = %order.order_id, "order already holds a reservation; returning it");
                    existing
                };
                let skus: Vec<&str> = lines.iter().map(|(sku, _)| sku.as_str()).collect();
                let products = if db.faults.scenario("n_plus_one_queries") {
                    select_products_one_by_one(&tx, db, &skus)?
                } else {
                    select_products(&tx, db, &skus)?
                };
                let mut levels = Vec::new();
                for (sku, quantity) in &lines {
                    let product = products
                        .get(sku)
                        .ok_or_else(|| StoreError::UnknownSku(sku.clone()))?;
                    if take_stock {
                        if product.stock < i64::from(*quantity) {
                            return Err(StoreError::InsufficientStock {
                                sku: sku.clone(),
                                requested: *quantity,
                                available: product.stock,
                            });
                        }
                        let left = product.stock - i64::from(*quantity);
                        let delivery = replenishment(sku, left);
                        let sql = "UPDATE products SET stock = stock - ?1 + ?3 WHERE sku = ?2";
                        db.statement("UPDATE", "products", sql, || {
                            tx.prepare_cached(sql)?
                                .execute(params![quantity, sku, delivery])
                        })?;
                        if delivery > 0 {
                            tracing::info!(
                                inventory.sku = %sku,
                                inventory.delivered = delivery,
                                "{sku} below its reorder point: {delivery} delivered"
                            );
                        }
                        let sql = "INSERT INTO reservations (order_id, sku, quantity, released) \
                                   VALUES (?1, ?2, ?3, 0) \
                                   ON CONFLICT (order_id, sku) DO UPDATE SET quantity = excluded.quantity, released = 0";
                        db.statement("INSERT", "reservations", sql, || {
                            tx.prepare_cached(sql)?
                                .execute(params![order.order_id, sku, quantity])
                        })?;
                        levels.push((sku.clone(), left + delivery));
                    }
                }
                let items = if db.faults.scenario("span_per_item") {
                    price_lines_span_per_item(&db.faults, &lines, &products)
                } else {
                    price_lines(&lines, &products)
                };
                tx.commit()?;
                let total_cents = items.iter().map(|l| l.line_total_cents).sum();
                Ok((
                    Reservation {
                        order_id: order.order_id,
                        items,
                        total_cents,
                    },
                    levels,
                ))
            })
            .await?;
        let (reservation, levels) = reservation;
        self.levels_mut().extend(levels);
        Ok(reservation)
    }

    /// Gives back the stock an order holds. Releasing an order with nothing reserved (never
    /// reserved, or already released) changes nothing and returns no lines.
    pub async fn release(&self, order_id: String) -> Result<Vec<ReleasedLine>, StoreError> {
        let (released, levels) = self
            .blocking(move |conn, db| {
                let tx = conn.transaction()?;
                let lines = active_reservation(&tx, db, &order_id)?;
                let mut levels = Vec::new();
                for (sku, quantity) in &lines {
                    let sql =
                        "UPDATE products SET stock = stock + ?1 WHERE sku = ?2 RETURNING stock";
                    let stock: i64 = db.statement("UPDATE", "products", sql, || {
                        tx.prepare_cached(sql)?
                            .query_row(params![quantity, sku], |r| r.get(0))
                    })?;
                    levels.push((sku.clone(), stock));
                }
                if !lines.is_empty() {
                    let sql = "UPDATE reservations SET released = 1 WHERE order_id = ?1";
                    db.statement("UPDATE", "reservations", sql, || {
                        tx.prepare_cached(sql)?.execute(params![order_id])
                    })?;
                }
                tx.commit()?;
                let released = lines
                    .into_iter()
                    .map(|(sku, quantity)| ReleasedLine { sku, quantity })
                    .collect::<Vec<_>>();
                Ok((released, levels))
            })
            .await?;
        self.levels_mut().extend(levels);
        Ok(released)
    }
}

impl Store {
    /// Commits the reservation of `order_id` (the fulfilment shipped it): its stock is never
    /// released after this. Committing again changes nothing and answers `Ok(false)`, so a
    /// message handled twice ships once.
    pub async fn commit(&self, order_id: String) -> Result<bool, StoreError> {
        self.blocking(move |conn, db| {
            let tx = conn.transaction()?;
            let sql = "SELECT 1 FROM commitments WHERE order_id = ?1";
            let already = db.statement("SELECT", "commitments", sql, || {
                tx.prepare_cached(sql)?
                    .query_row(params![order_id], |_| Ok(()))
                    .optional()
            })?;
            if already.is_some() {
                return Ok(false);
            }
            if active_reservation(&tx, db, &order_id)?.is_empty() {
                return Err(StoreError::NoReservation(order_id));
            }
            let sql =
                "INSERT INTO commitments (order_id, committed_at) VALUES (?1, datetime('now'))";
            db.statement("INSERT", "commitments", sql, || {
                tx.prepare_cached(sql)?.execute(params![order_id])
            })?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}

/// Prices the reserved lines at the products' current prices, in one span: pricing is
/// arithmetic on rows already read, so a span per line would cost more than the work.
fn price_lines(lines: &[(String, u32)], products: &HashMap<String, Product>) -> Vec<ReservedLine> {
    let _span = tracing::info_span!(
        "inventory.price_lines",
        inventory.line_count = lines.len() as i64
    )
    .entered();
    lines
        .iter()
        .filter_map(|(sku, quantity)| Some(priced(products.get(sku)?, *quantity)))
        .collect()
}

/// The planted `span_per_item` problem: the same pricing as [`price_lines`], with a span
/// opened inside the loop "to see each item", so an order of N lines sends N spans that
/// each last microseconds and say nothing the business span's attributes do not.
fn price_lines_span_per_item(
    faults: &Faults,
    lines: &[(String, u32)],
    products: &HashMap<String, Product>,
) -> Vec<ReservedLine> {
    let mut items = Vec::with_capacity(lines.len());
    for (sku, quantity) in lines {
        let _span =
            tracing::info_span!("inventory.price_item", inventory.sku = %sku, inventory.quantity = i64::from(*quantity))
                .entered();
        faults.mark_injected("span_per_item");
        if let Some(product) = products.get(sku) {
            items.push(priced(product, *quantity));
        }
    }
    items
}

fn priced(product: &Product, quantity: u32) -> ReservedLine {
    ReservedLine {
        sku: product.sku.clone(),
        name: product.name.clone(),
        quantity,
        unit_price_cents: product.price_cents,
        line_total_cents: product.price_cents * i64::from(quantity),
    }
}

fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        sku: row.get(0)?,
        name: row.get(1)?,
        price_cents: row.get(2)?,
        stock: row.get(3)?,
    })
}

fn select_product(conn: &Connection, db: &Db, sku: &str) -> rusqlite::Result<Option<Product>> {
    let sql = "SELECT sku, name, price_cents, stock FROM products WHERE sku = ?1";
    db.statement("SELECT", "products", sql, || {
        conn.prepare_cached(sql)?
            .query_row(params![sku], product_from_row)
            .optional()
    })
}

/// The products of `skus`, by sku, read with one statement whatever the number of lines.
/// The skus travel as one JSON array parameter, so the query text (and its span) is the
/// same for every order.
fn select_products(
    conn: &Connection,
    db: &Db,
    skus: &[&str],
) -> rusqlite::Result<HashMap<String, Product>> {
    let sql = "SELECT sku, name, price_cents, stock FROM products \
               WHERE sku IN (SELECT value FROM json_each(?1))";
    let skus = serde_json::to_string(skus).expect("a list of strings is valid JSON");
    db.statement("SELECT", "products", sql, || {
        conn.prepare_cached(sql)?
            .query_map(params![skus], product_from_row)?
            .map(|row| row.map(|p| (p.sku.clone(), p)))
            .collect()
    })
}

/// The planted `n_plus_one_queries` problem: the same products as [`select_products`], read
/// the way code often starts out, calling the one-product helper in a loop. Each line is a
/// statement (and a `SELECT products` span) of its own: an order of N lines costs N round
/// trips where one would do.
fn select_products_one_by_one(
    conn: &Connection,
    db: &Db,
    skus: &[&str],
) -> rusqlite::Result<HashMap<String, Product>> {
    db.faults.mark_injected("n_plus_one_queries");
    let mut products = HashMap::new();
    for sku in skus {
        if let Some(product) = select_product(conn, db, sku)? {
            products.insert(product.sku.clone(), product);
        }
    }
    Ok(products)
}

fn active_reservation(
    conn: &Connection,
    db: &Db,
    order_id: &str,
) -> rusqlite::Result<Vec<(String, u32)>> {
    let sql = "SELECT sku, quantity FROM reservations WHERE order_id = ?1 AND released = 0 \
         AND order_id NOT IN (SELECT order_id FROM commitments) ORDER BY sku";
    db.statement("SELECT", "reservations", sql, || {
        conn.prepare_cached(sql)?
            .query_map(params![order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
}
