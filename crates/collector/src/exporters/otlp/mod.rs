//! The OTLP exporters: `otlp_grpc` (alias `otlp`, the Go collector's otlpexporter) in
//! `grpc.rs` and `otlp_http` (alias `otlphttp`, its otlphttpexporter) in `http.rs`, each
//! behind the shared sending queue and retry policy (`exporters::helper`).

mod grpc;
mod http;

pub use grpc::{GRPC_FACTORY, GrpcExporterConfig, grpc_exporter};
pub use http::{HTTP_FACTORY, HttpExporterConfig};

use crate::pdata::Signal;

const ALL: &[Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];

pub(super) fn compression_problem(c: &str) -> Option<(&'static str, String)> {
    (!matches!(c, "gzip" | "zstd" | "none" | "")).then(|| {
        (
            "compression",
            format!("unknown compression \"{c}\"; use gzip, zstd or none"),
        )
    })
}
