//! Exporters: where telemetry leaves the collector.
pub mod debug;
pub mod file;
pub mod helper;
pub mod jaeger_storage_exporter;
pub mod loadbalancing;
pub mod loki;
pub mod nop;
pub mod otlp;
pub mod prometheus;
