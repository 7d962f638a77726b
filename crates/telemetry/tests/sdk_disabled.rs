//! `OTEL_SDK_DISABLED=true`: no providers, yet the service and its layers keep working, and
//! nothing is sent to the collector the environment names.

#[path = "../src/testing.rs"]
#[allow(dead_code)]
mod testing;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use telemetry::http_client::TracedClient;
use telemetry::{ServiceInfo, http_server};
use testing::OtlpReceiver;

#[test]
fn disabled_sdk_exports_nothing_and_requests_still_work() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A real receiver at the configured endpoint: if anything were exported, it would land.
    let receiver = runtime.block_on(OtlpReceiver::start()).unwrap();
    // SAFETY: set before the runtime runs anything that reads the environment.
    unsafe {
        std::env::set_var("OTEL_SDK_DISABLED", "true");
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
        std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "100");
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    }
    runtime.block_on(async {
        let guard = telemetry::init(ServiceInfo {
            name: "disabled-test",
            version: "0.0.0",
        })
        .unwrap();
        assert!(!guard.is_enabled());
        let app = Router::new()
            .route(
                "/hello",
                get(|| async {
                    tracing::info!("saying hello");
                    "hi"
                }),
            )
            .layer(http_server::layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hello", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = TracedClient::new(Duration::from_secs(5));
        let response = client.send(client.get(url)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "hi");
        guard.shutdown().await;
        server.abort();
        // Several export intervals after a shutdown that would have flushed everything.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    assert!(receiver.spans().is_empty(), "spans were exported");
    assert!(receiver.logs().is_empty(), "logs were exported");
    assert!(receiver.metrics().is_empty(), "metrics were exported");
}
