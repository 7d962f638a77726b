//! `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`: the per-signal paths are appended to the
//! endpoint and spans and logs arrive at a real OTLP/HTTP receiver.

#[path = "../src/testing.rs"]
#[allow(dead_code)]
mod testing;

use std::time::Duration;

use telemetry::ServiceInfo;
use testing::OtlpReceiver;

#[test]
fn http_protobuf_exports_to_the_signal_paths() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(OtlpReceiver::start()).unwrap();
    // SAFETY: set before the runtime runs anything that reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint());
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        std::env::set_var("OTEL_BLRP_SCHEDULE_DELAY", "100");
    }
    runtime.block_on(async move {
        let guard = telemetry::init(ServiceInfo {
            name: "http-export-test",
            version: "1.0.0",
        })
        .unwrap();
        tracing::info_span!("http.export.check").in_scope(|| {
            tracing::info!("inside the span");
        });
        guard.shutdown().await;
        let arrived = receiver
            .wait_until(Duration::from_secs(5), |r| {
                r.spans().iter().any(|s| s.span.name == "http.export.check")
                    && r.logs().iter().any(|l| l.body() == "inside the span")
            })
            .await;
        assert!(arrived, "span and log did not arrive over OTLP/HTTP");
        let spans = receiver.spans();
        let span = spans
            .iter()
            .find(|s| s.span.name == "http.export.check")
            .unwrap();
        assert_eq!(span.service_name(), "http-export-test");
        let logs = receiver.logs();
        let log = logs.iter().find(|l| l.body() == "inside the span").unwrap();
        assert_eq!(log.span_id(), span.span_id());
    });
}
