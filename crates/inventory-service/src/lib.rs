//! inventory-service: the stock keeper of the otel-lab shop, simulated as an EC2 instance
//! (it exports OTLP straight to the collector gateway). order-service calls it to price and
//! reserve the items of an order (`POST /inventory/reserve`, all or nothing) and to give them
//! back when fraud check or payment fails (`POST /inventory/release`). Stock lives in SQLite;
//! every statement shows up as a database CLIENT span under the `inventory.reserve_stock` /
//! `inventory.release_stock` business spans and as a `db.client.operation.duration` point
//! (a request waiting for the one connection shows a `wait for connection` span), and the
//! `inventory.stock_level` gauge reports stock per sku. A line that takes a product below its
//! reorder point (a quarter of its opening stock) brings a delivery of the opening stock with
//! it (logged on the reservation's span), so long runs of traffic never empty the shelves.
//! Fault scenarios:
//! `slow_inventory_queries` (every statement 150-400 ms slower), `inventory_lock` (reserve
//! and release take one lock for the whole request: `inventory.wait_for_lock`), and two of
//! the workshop's planted problems, each marked by a `fault.injected` event where it acts:
//! `n_plus_one_queries` (a reservation reads each product with its own SELECT instead of one
//! for all its lines) and `span_per_item` (an `inventory.price_item` span per line instead of
//! one `inventory.price_lines` span).

pub mod app;
pub mod config;
pub mod domain;
pub mod routes;
pub mod store;
