//! payment-service as a real process with a real OTLP receiver.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use serde_json::{Value, json};
use telemetry::testing::{OtlpReceiver, ReceivedSpan, ServiceProcess};

fn start(receiver: &OtlpReceiver) -> ServiceProcess {
    ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_payment-service").as_ref(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".to_owned()),
            ("PAYMENT_GATEWAY_TIMEOUT_MS", "300".to_owned()),
        ],
    )
    .unwrap()
}

async fn pay(service: &ServiceProcess, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/payments", service.url()))
        .json(&json!({
            "order_id": format!("o-{token}"),
            "amount_cents": 12_345,
            "currency": "USD",
            "card_token": token,
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn is_error(span: &ReceivedSpan) -> bool {
    span.span.status.clone().unwrap_or_default().code == OtlpStatus::Error as i32
}

fn span<'a>(spans: &'a [ReceivedSpan], name: &str, order: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| {
            s.span.name == name
                && (s.attr("order.id").as_deref() == Some(order) || name.starts_with("POST"))
        })
        .unwrap_or_else(|| panic!("no {name} span for {order}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_authorized_declined_and_timeout() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let service = start(&receiver);

    let (status, body) = pay(&service, "tok_visa").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "authorized");
    assert!(body["payment_id"].as_str().unwrap().starts_with("pay_"));

    let (status, body) = pay(&service, "tok_declined").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["status"], "declined");

    let (status, body) = pay(&service, "tok_timeout").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["status"], "timeout");

    let metrics_seen = receiver
        .wait_until(Duration::from_secs(10), |r| {
            let names: Vec<_> = r.metrics().into_iter().map(|m| m.metric.name).collect();
            [
                "payments.authorized",
                "payments.declined",
                "payments.amount",
            ]
            .iter()
            .all(|n| names.iter().any(|m| m == n))
        })
        .await;
    assert!(metrics_seen, "payment metrics were not exported");
    assert!(service.stop().unwrap().success());

    let spans = receiver.spans();
    let declined = span(&spans, "payment.authorize", "o-tok_declined");
    assert_eq!(
        declined.attr("payment.outcome").as_deref(),
        Some("declined")
    );
    assert!(!is_error(declined), "a declined card is not a server error");
    let declined_server = spans
        .iter()
        .find(|s| s.span_id() == declined.parent_span_id())
        .unwrap();
    assert_eq!(
        declined_server.attr("http.response.status_code").as_deref(),
        Some("402")
    );
    assert!(!is_error(declined_server), "402 is not a server error");

    let timed_out = span(&spans, "payment.authorize", "o-tok_timeout");
    assert!(is_error(timed_out));
    let gateway = spans
        .iter()
        .find(|s| {
            s.span.name == "payment.gateway_call" && s.parent_span_id() == timed_out.span_id()
        })
        .expect("gateway call span under payment.authorize");
    assert!(is_error(gateway));
    assert!(gateway.span.events.iter().any(|e| e.name == "exception"));
    let timed_out_server = spans
        .iter()
        .find(|s| s.span_id() == timed_out.parent_span_id())
        .unwrap();
    assert!(is_error(timed_out_server), "504 is a server error");
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_timeout_scenario_times_out_every_card() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let service = start(&receiver);
    let response = reqwest::Client::new()
        .post(format!("{}/admin/faults", service.url()))
        .json(&json!({"scenarios": ["payment_gateway_timeout"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = pay(&service, "tok_visa").await;
    assert_eq!(status, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_payment_is_400_with_a_clear_message() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let service = start(&receiver);
    let (status, body) = pay(&service, "4111111111111111").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("card_token"),
        "{body}"
    );
}
