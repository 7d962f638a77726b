//! payment-service binary: telemetry, configuration from the environment, serve until
//! SIGTERM/Ctrl-C, then flush telemetry.

use payment_service::{app, config::Config};

#[global_allocator]
static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let info = telemetry::ServiceInfo {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
    };
    telemetry::run_service(info, |shutdown| async move {
        app::Application::build(Config::from_env()?)
            .await?
            .run_until(shutdown)
            .await
    })
    .await
}
