//! The real `bootstrap` driven through the real emulator over sockets.

mod support;

use serde_json::{Value as Json, json};
use support::{
    BOOTSTRAP, RunningEmulator, client, otel_env, resource_attr, script, start_function,
    wait_for_spans,
};
use telemetry::testing::OtlpReceiver;

fn order(customer_id: &str, amount_cents: i64) -> Json {
    json!({
        "order_id": "ord-1001",
        "customer_id": customer_id,
        "amount_cents": amount_cents,
        "item_count": 2,
    })
}

async fn check(emulator: &RunningEmulator, body: &Json) -> (u16, Json) {
    let response = client()
        .post(&emulator.url)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn ordinary_orders_are_approved_and_flagged_customers_rejected() {
    let emulator = RunningEmulator::start(BOOTSTRAP.as_ref(), &[], &[]).await;

    let (status, body) = check(&emulator, &order("cust-42", 2_500)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "approve");
    let score = body["score"].as_f64().unwrap();
    assert!((0.0..0.7).contains(&score), "{body}");

    let (status, body) = check(&emulator, &order("fraudster-7", 2_500)).await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], "reject");
    assert_eq!(body["reasons"], json!(["customer_flagged"]));

    let (status, body) = check(&emulator, &order("cust-42", 2_000_000)).await;
    assert_eq!(status, 200);
    assert_eq!(body["decision"], "reject");
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("amount_over_limit"))
    );

    // One warm process served all three.
    assert_eq!(emulator.cold_starts(), 1);
    emulator.stop().await;
}

#[tokio::test]
async fn a_bad_body_is_a_400_and_the_function_keeps_serving() {
    let emulator = RunningEmulator::start(BOOTSTRAP.as_ref(), &[], &[]).await;
    let client = client();

    let response = client
        .post(&emulator.url)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Json = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("invalid fraud check request"),
        "{body}"
    );

    let (status, body) = check(
        &emulator,
        &json!({"order_id": "o", "customer_id": "c", "amount_cents": -5, "item_count": 1}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "amount_cents must not be negative (got -5)");

    let (status, body) = check(&emulator, &order("cust-1", 100)).await;
    assert_eq!((status, &body["decision"]), (200, &json!("approve")));
    assert_eq!(emulator.cold_starts(), 1);
    emulator.stop().await;
}

#[tokio::test]
async fn a_function_that_crashes_at_start_recovers_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("crashed-once");
    // The first process dies before reaching the Runtime API; later ones run the real function.
    let function = script(
        dir.path(),
        "bootstrap",
        &format!(
            "if [ ! -e '{m}' ]; then touch '{m}'; echo 'init crash' >&2; exit 1; fi\nexec '{BOOTSTRAP}'",
            m = marker.display()
        ),
    );
    let emulator = RunningEmulator::start(&function, &[], &[]).await;

    let response = client()
        .post(&emulator.url)
        .json(&order("cust-1", 100))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Json = response.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("exited"),
        "{body}"
    );

    let (status, body) = check(&emulator, &order("cust-1", 100)).await;
    assert_eq!((status, &body["decision"]), (200, &json!("approve")));
    assert_eq!(emulator.cold_starts(), 2);
    emulator.stop().await;
}

#[tokio::test]
async fn the_callers_trace_is_continued_and_only_the_first_invocation_is_cold() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_function(&[], &otel_env(&receiver, &[])).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span_id = "00f067aa0ba902b7";

    let mut request_ids = Vec::new();
    for _ in 0..2 {
        let response = client()
            .post(&emulator.url)
            .header("traceparent", format!("00-{trace_id}-{caller_span_id}-01"))
            .json(&order("cust-42", 2_500))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        request_ids.push(
            response.headers()["x-amzn-requestid"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }

    let invocations = wait_for_spans(&receiver, "fraud-check", 2).await;
    let scores = wait_for_spans(&receiver, "fraud_check.score", 2).await;
    for (n, request_id) in request_ids.iter().enumerate() {
        let invocation = invocations
            .iter()
            .find(|s| s.attr("faas.invocation_id").as_ref() == Some(request_id))
            .unwrap_or_else(|| panic!("no invocation span for request {request_id}"));
        assert_eq!(invocation.trace_id(), trace_id);
        assert_eq!(invocation.parent_span_id(), caller_span_id);
        assert_eq!(invocation.attr("faas.trigger").as_deref(), Some("http"));
        assert_eq!(
            invocation.attr("cloud.platform").as_deref(),
            Some("aws_lambda")
        );
        let cold = (n == 0).to_string();
        assert_eq!(
            invocation.attr("faas.coldstart").as_deref(),
            Some(cold.as_str()),
            "invocation {n}"
        );
        assert_eq!(
            resource_attr(invocation, "faas.name").as_deref(),
            Some("fraud-check")
        );
        assert_eq!(
            resource_attr(invocation, "faas.version").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            resource_attr(invocation, "cloud.provider").as_deref(),
            Some("aws")
        );
        assert_eq!(invocation.service_name(), "fraud-check");

        let score = scores
            .iter()
            .find(|s| s.span.parent_span_id == invocation.span.span_id)
            .expect("fraud_check.score is a child of the invocation span");
        assert_eq!(score.trace_id(), trace_id);
        assert_eq!(score.attr("fraud.decision").as_deref(), Some("approve"));
        let fraud_score: f64 = score.attr("fraud.score").unwrap().parse().unwrap();
        assert!(fraud_score < 0.7, "{fraud_score}");
    }
    emulator.stop().await;
}

#[tokio::test]
async fn an_idle_function_is_stopped_and_the_next_request_is_a_cold_start() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_function(&["--idle-timeout", "1s"], &otel_env(&receiver, &[])).await;

    let (status, _) = check(&emulator, &order("cust-1", 100)).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !emulator.log().contains("idle for 1s") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the function was never stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = check(&emulator, &order("cust-1", 100)).await;
    assert_eq!(status, 200);

    assert_eq!(emulator.cold_starts(), 2);
    let invocations = wait_for_spans(&receiver, "fraud-check", 2).await;
    let cold: Vec<_> = invocations
        .iter()
        .map(|s| s.attr("faas.coldstart"))
        .collect();
    assert_eq!(cold, [Some("true".to_owned()), Some("true".to_owned())]);
    let instances: std::collections::HashSet<_> = invocations
        .iter()
        .map(|s| resource_attr(s, "service.instance.id"))
        .collect();
    assert_eq!(
        instances.len(),
        2,
        "each execution environment has its own instance id"
    );
    emulator.stop().await;
}

#[tokio::test]
async fn sigterm_stops_the_emulator_and_its_function_process() {
    let emulator = RunningEmulator::start(BOOTSTRAP.as_ref(), &[], &[]).await;
    let (status, _) = check(&emulator, &order("cust-1", 100)).await;
    assert_eq!(status, 200);
    let pid = emulator
        .function_pid()
        .expect("the log names the function's pid");
    assert!(process_alive(pid));

    assert!(
        emulator.stop().await,
        "the emulator exits cleanly on SIGTERM"
    );
    assert!(
        !process_alive(pid),
        "the function process {pid} outlived the emulator"
    );
}

/// Whether `pid` runs (a zombie awaiting its reaper does not count).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}
