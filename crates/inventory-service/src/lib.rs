//! inventory-service: the stock keeper of the otel-lab shop, simulated as an EC2 instance
//! (it exports OTLP straight to the collector gateway). order-service calls it to price and
//! reserve the items of an order (`POST /inventory/reserve`, all or nothing) and to give them
//! back when fraud check or payment fails (`POST /inventory/release`). Stock lives in SQLite;
//! every statement shows up as a database CLIENT span under the `inventory.reserve_stock` /
//! `inventory.release_stock` business spans, and the `inventory.stock_level` gauge reports
//! stock per sku. Fault scenarios: `slow_inventory_queries`, `inventory_lock`.

pub mod app;
pub mod config;
pub mod domain;
pub mod routes;
pub mod store;
