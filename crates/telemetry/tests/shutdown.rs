//! Shutdown keeps its promise: with the collector accepting connections but never answering,
//! stopping telemetry takes about `SHUTDOWN_TIMEOUT`, not the exporters' own timeouts three
//! times over.
//!
//! Providers are process-global, so this binary holds one test.

use std::time::{Duration, Instant};

use telemetry::{SHUTDOWN_TIMEOUT, ServiceInfo};

#[test]
fn shutdown_with_a_silent_collector_ends_within_the_timeout() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Accepts connections and reads nothing: an export neither fails nor succeeds.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().flatten() {
            open.push(stream);
        }
    });
    // SAFETY: set before the runtime runs anything that reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
        std::env::set_var("OTEL_EXPORTER_OTLP_TIMEOUT", "30000");
    }
    runtime.block_on(async {
        let guard = telemetry::init(ServiceInfo {
            name: "shutdown-test",
            version: "0.0.0",
        })
        .unwrap();
        tracing::info_span!("work.to_flush").in_scope(|| tracing::info!("a log line to flush"));
        let started = Instant::now();
        guard.shutdown().await;
        let took = started.elapsed();
        // A second of slack for thread start-up on a loaded machine.
        assert!(
            took < SHUTDOWN_TIMEOUT + Duration::from_secs(2),
            "shutdown took {took:?} with SHUTDOWN_TIMEOUT {SHUTDOWN_TIMEOUT:?}"
        );
    });
}
