//! A SIGTERM that arrives while a service is still starting stops it gracefully instead of
//! killing it with the default action (which would lose its telemetry): `run_service`
//! installs the handlers before the service binds or even sets up telemetry.
//!
//! The signal goes to this test process itself; before the fix, it killed the test binary.

use std::time::Duration;

#[test]
fn sigterm_during_start_up_is_a_graceful_stop() {
    // SAFETY: set before the runtime exists.
    unsafe { std::env::set_var("OTEL_SDK_DISABLED", "true") };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let info = telemetry::ServiceInfo {
        name: "signal-test",
        version: "0.0.0",
    };
    let stopped_early = runtime.block_on(telemetry::run_service(info, |shutdown| async move {
        // "Start-up": the signal arrives while the service is not serving yet.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()?;
        assert!(status.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Now serving: the shutdown future has already seen the signal.
        tokio::time::timeout(Duration::from_secs(5), shutdown)
            .await
            .map_err(|_| anyhow::anyhow!("the SIGTERM sent during start-up was lost"))?;
        Ok(())
    }));
    assert!(stopped_early.is_ok(), "{stopped_early:?}");
}
