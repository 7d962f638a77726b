//! order-service binary: telemetry, configuration from the environment, serve until
//! SIGTERM/Ctrl-C, then flush telemetry.

use order_service::{app, config::Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = telemetry::init(telemetry::ServiceInfo {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
    })?;
    let result = async {
        let config = Config::from_env()?;
        app::Application::build(config)
            .await?
            .run_until(telemetry::shutdown_signal())
            .await
    }
    .await;
    if let Err(err) = &result {
        tracing::error!(
            error = format!("{err:#}"),
            "order-service stopped with an error"
        );
    }
    telemetry.shutdown().await;
    result
}
