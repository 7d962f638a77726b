//! `fulfilment`: the queue-triggered fulfilment function as the `provided.al2023` runtime
//! starts it (packaged as `bootstrap` in its own zip). See [`lambda_handler::fulfilment`].

use std::sync::Arc;

use lambda_handler::fulfilment::{FulfilmentFunction, Services};
use lambda_handler::lambda_env;
use lambda_runtime::{Runtime, service_fn};

#[global_allocator]
static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;

fn main() -> Result<(), lambda_runtime::Error> {
    // Environment changes before any other thread exists, as in `bootstrap`.
    lambda_env::prepare_telemetry_env();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    let guard = Arc::new(telemetry::init(telemetry::ServiceInfo {
        name: "fulfilment",
        version: env!("CARGO_PKG_VERSION"),
    })?);
    let flush_guard = guard.clone();
    let function =
        FulfilmentFunction::new(Services::from_env(), Arc::new(move || flush_guard.flush()));
    let runtime = Runtime::new(service_fn(move |event| {
        let function = function.clone();
        async move { function.invoke(event).await }
    }));
    let result = runtime.run().await;
    if let Ok(guard) = Arc::try_unwrap(guard) {
        guard.shutdown().await;
    }
    result
}
