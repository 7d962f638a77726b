//! `GET|POST /admin/faults` on the Function URL: the function's fault configuration, changed
//! the way `update-function-configuration` changes a Lambda's environment (real emulator and
//! `bootstrap` processes over 127.0.0.1).

mod support;

use std::time::Duration;

use serde_json::{Value as Json, json};
use support::{
    BOOTSTRAP, RunningEmulator, client, counter_value, latest_metric, otel_env, spans_named,
    start_function,
};
use telemetry::testing::OtlpReceiver;

/// What order-service sends to the function URL for an order.
fn order_check() -> Json {
    json!({
        "order_id": "ord-3001",
        "customer_id": "cust-42",
        "amount_cents": 2_500,
        "item_count": 2,
    })
}

async fn fraud_check(emulator: &RunningEmulator) -> Json {
    let response = client()
        .post(&emulator.url)
        .json(&order_check())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn faults(emulator: &RunningEmulator, body: Option<Json>) -> (u16, Json) {
    let url = format!("{}/admin/faults", emulator.url);
    let request = match body {
        Some(body) => client().post(url).json(&body),
        None => client().get(url),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn fraud_reject_all_is_switched_on_and_off_through_the_function_url() {
    let emulator = start_function(&[], &[]).await;

    let (status, settings) = faults(&emulator, None).await;
    assert_eq!(status, 200);
    assert_eq!(settings["scenarios"], json!([]), "{settings}");
    assert_eq!(
        emulator.cold_starts(),
        0,
        "reading the configuration invokes nothing"
    );
    assert_eq!(fraud_check(&emulator).await["decision"], "approve");

    let (status, settings) =
        faults(&emulator, Some(json!({"scenarios": ["fraud_reject_all"]}))).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["scenarios"], json!(["fraud_reject_all"]));
    assert_eq!(faults(&emulator, None).await.1, settings);

    let verdict = fraud_check(&emulator).await;
    assert_eq!(verdict["decision"], "reject", "{verdict}");
    assert_eq!(verdict["reasons"], json!(["fault_injection"]));
    assert_eq!(
        emulator.cold_starts(),
        2,
        "the new configuration runs in a new execution environment"
    );
    // The environment with the new configuration stays warm.
    assert_eq!(fraud_check(&emulator).await["decision"], "reject");
    assert_eq!(emulator.cold_starts(), 2);

    let (status, settings) = faults(&emulator, Some(json!({"scenarios": []}))).await;
    assert_eq!(status, 200, "{settings}");
    let verdict = fraud_check(&emulator).await;
    assert_eq!(verdict["decision"], "approve", "{verdict}");
    assert_eq!(emulator.cold_starts(), 3);
    emulator.stop().await;
}

#[tokio::test]
async fn an_invalid_or_unchanged_configuration_keeps_the_warm_environment() {
    let emulator = start_function(&[], &[]).await;
    assert_eq!(fraud_check(&emulator).await["decision"], "approve");

    let (status, body) = faults(&emulator, Some(json!({"scenarios": ["reject_everything"]}))).await;
    assert_eq!(status, 400);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("reject_everything") && error.contains("fraud_reject_all"),
        "{error}"
    );
    let (status, _) = faults(&emulator, Some(json!({"error_rate": 0.0}))).await;
    assert_eq!(status, 200, "setting what is already set changes nothing");

    assert_eq!(fraud_check(&emulator).await["decision"], "approve");
    assert_eq!(emulator.cold_starts(), 1);
    emulator.stop().await;
}

#[tokio::test]
async fn error_rate_fails_invocations_as_function_errors_and_latency_delays_them() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_function(&[], &otel_env(&receiver, &[])).await;
    let (status, _) = faults(&emulator, Some(json!({"error_rate": 1.0}))).await;
    assert_eq!(status, 200);
    let response = client()
        .post(&emulator.url)
        .json(&order_check())
        .send()
        .await
        .unwrap();
    // A function error: Lambda answers the Function URL caller 502.
    assert_eq!(response.status(), 502);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["errorType"], "InjectedFault", "{body}");
    // Counted and traced as a failed invocation.
    let counted = receiver
        .wait_until(Duration::from_secs(5), |r| {
            latest_metric(r, "faas.errors")
                .is_some_and(|m| counter_value(&m, &[("faas.trigger", "http")]) == Some(1))
        })
        .await;
    assert!(counted, "{:?}", latest_metric(&receiver, "faas.errors"));
    let failed = spans_named(&receiver, "fraud-check");
    let [failed] = failed.as_slice() else {
        panic!("one invocation span: {failed:?}");
    };
    assert_eq!(failed.attr("error.type").as_deref(), Some("InjectedFault"));
    assert_eq!(
        failed.span.status.as_ref().map(|s| s.code),
        Some(2),
        "status Error"
    );

    let (status, _) = faults(
        &emulator,
        Some(json!({"error_rate": 0.0, "latency_ms": 300})),
    )
    .await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    assert_eq!(fraud_check(&emulator).await["decision"], "approve");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    emulator.stop().await;
}

#[tokio::test]
async fn fault_variables_of_the_emulator_are_the_initial_configuration() {
    let emulator = RunningEmulator::start(
        BOOTSTRAP.as_ref(),
        &[],
        &[("FAULT_SCENARIOS", "fraud_reject_all")],
    )
    .await;
    assert_eq!(
        faults(&emulator, None).await.1["scenarios"],
        json!(["fraud_reject_all"])
    );
    assert_eq!(fraud_check(&emulator).await["decision"], "reject");
    emulator.stop().await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lambda-emulator"))
        .args(["--function", BOOTSTRAP, "--listen", "127.0.0.1:0"])
        .env("FAULT_SCENARIOS", "fraud_reject_some")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success(), "a typo fails the start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fraud_reject_some"), "{stderr}");
}
