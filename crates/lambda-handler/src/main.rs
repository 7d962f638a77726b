//! `bootstrap`: the fraud-check function as the `provided.al2023` runtime starts it.

use std::sync::Arc;

use lambda_handler::function::FraudCheckFunction;
use lambda_handler::lambda_env;
use lambda_runtime::{Runtime, service_fn};

#[global_allocator]
static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;

fn main() -> Result<(), lambda_runtime::Error> {
    // Environment changes must happen before any other thread exists (the tokio runtime
    // starts its workers below), which is why main is not #[tokio::main].
    lambda_env::prepare_telemetry_env();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let guard = Arc::new(telemetry::init(telemetry::ServiceInfo {
        name: "fraud-check",
        version: env!("CARGO_PKG_VERSION"),
    })?);
    let flush_guard = guard.clone();
    // Invalid FAULT_* settings fail the initialisation, as a misconfigured function would.
    let function = FraudCheckFunction::from_env(Arc::new(move || flush_guard.flush()))?;
    // No TracingLayer: the function opens its own invocation span, which must be created
    // after the event is read so it can continue the caller's trace.
    let runtime = Runtime::new(service_fn(move |event| {
        let function = function.clone();
        async move { function.invoke(event).await }
    }));
    // `run` returns only when the Runtime API goes away. Nothing should be left to export by
    // then: every invocation flushed its own telemetry, and that flush is the one that
    // counts, because Lambda gives the runtime a SIGTERM and a moment to clean up only when
    // an extension is registered; otherwise it just ends the environment (so does the
    // emulator). A clean shutdown still costs nothing when it can happen.
    let result = runtime.run().await;
    if let Ok(guard) = Arc::try_unwrap(guard) {
        guard.shutdown().await;
    }
    result
}
