//! otel-lab's collector: an OpenTelemetry collector in Rust that reads the Go collector's
//! YAML (receivers, processors, exporters, connectors, extensions, `service.pipelines`)
//! unchanged. Telemetry enters through the OTLP receiver (gRPC and HTTP), flows through the
//! processors of each pipeline as OTLP protobuf values, and leaves through exporters (OTLP,
//! Prometheus, debug, file, ...). In the lab it runs twice: as the per-node agent the
//! workloads send to, and as the gateway that fans out to the backends.

pub mod component;
pub mod config;
pub mod connectors;
pub mod exporters;
pub mod extensions;
pub mod otlp_codec;
pub mod pdata;
pub mod processors;
pub mod receivers;
pub mod registry;
pub mod service;
pub mod telemetry;

/// The insides and the recipe for a new component (README.md); its example is a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct Readme;
