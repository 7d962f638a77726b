//! The emulator's own behaviour, with stand-in functions that crash or hang (real processes).

mod support;

use support::{RunningEmulator, client, script};

#[tokio::test]
async fn healthz_answers_without_invoking_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let function = script(dir.path(), "bootstrap", "exit 1");
    let emulator = RunningEmulator::start(&function, &[], &[]).await;

    let response = client()
        .get(format!("{}/healthz", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(emulator.cold_starts(), 0);
    emulator.stop().await;
}

#[tokio::test]
async fn a_crashing_function_gives_502_and_the_next_request_starts_a_new_process() {
    let dir = tempfile::tempdir().unwrap();
    let function = script(dir.path(), "bootstrap", "echo 'segfault-ish' >&2\nexit 3");
    let emulator = RunningEmulator::start(&function, &[], &[]).await;
    let client = client();

    for attempt in 1..=2 {
        let response = client.post(&emulator.url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 502, "attempt {attempt}");
        assert!(response.headers().contains_key("x-amzn-requestid"));
        let body: serde_json::Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("fraud-check exited (exit status: 3)"),
            "{message}"
        );
    }
    assert_eq!(emulator.cold_starts(), 2);
    let health = client
        .get(format!("{}/healthz", emulator.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(emulator.log().contains("[fraud-check] segfault-ish"));
    emulator.stop().await;
}

#[tokio::test]
async fn a_function_that_never_answers_times_out_with_504() {
    let dir = tempfile::tempdir().unwrap();
    let function = script(dir.path(), "bootstrap", "exec sleep 60");
    let emulator = RunningEmulator::start(&function, &["--timeout", "1s"], &[]).await;
    let client = client();

    let response = client.post(&emulator.url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 504);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{body}"
    );

    // The hung process was stopped: the next request is served by a new one.
    let response = client.post(&emulator.url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(emulator.cold_starts(), 2);
    emulator.stop().await;
}

#[tokio::test]
async fn a_missing_function_binary_is_refused_at_startup() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lambda-emulator"))
        .args([
            "--function",
            "/nonexistent/bootstrap",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/bootstrap is not a file"),
        "{stderr}"
    );
}
