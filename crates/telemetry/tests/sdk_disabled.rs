//! `OTEL_SDK_DISABLED=true`: no providers, yet the service and its layers keep working.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use telemetry::http_client::TracedClient;
use telemetry::{ServiceInfo, http_server};

#[test]
fn disabled_sdk_installs_no_providers_and_requests_still_work() {
    // SAFETY: set before any other thread of this test binary's only test exists.
    unsafe {
        std::env::set_var("OTEL_SDK_DISABLED", "true");
        // Would be unreachable: proves nothing tries to export.
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let guard = telemetry::init(ServiceInfo {
            name: "disabled-test",
            version: "0.0.0",
        })
        .unwrap();
        assert!(!guard.is_enabled());
        let app = Router::new()
            .route("/hello", get(|| async { "hi" }))
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
    });
}
