//! Receivers: where telemetry enters the collector.
pub mod otlp;
