//! payment-service as a real process with a real OTLP receiver.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use serde_json::{Value, json};
use telemetry::testing::{OtlpReceiver, ReceivedSpan, ServiceProcess, attr};

/// The service with its captures database in a temporary directory of its own, removed
/// when the returned directory is dropped.
fn start(receiver: &OtlpReceiver) -> (ServiceProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (start_in(receiver, dir.path()), dir)
}

fn start_in(receiver: &OtlpReceiver, dir: &std::path::Path) -> ServiceProcess {
    ServiceProcess::spawn(
        env!("CARGO_BIN_EXE_payment-service").as_ref(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200".to_owned()),
            ("PAYMENT_GATEWAY_TIMEOUT_MS", "300".to_owned()),
            (
                "DATABASE_URL",
                dir.join("payments.db").display().to_string(),
            ),
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

async fn void(service: &ServiceProcess, payment_id: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/payments/{payment_id}/void", service.url()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn set_scenarios(service: &ServiceProcess, scenarios: &[&str]) {
    let response = reqwest::Client::new()
        .post(format!("{}/admin/faults", service.url()))
        .json(&json!({ "scenarios": scenarios }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
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

/// The latest value of the counter `name` (cumulative: the last export holds the total),
/// by currency; empty when it was never exported.
fn counter(receiver: &OtlpReceiver, name: &str) -> HashMap<String, i64> {
    let mut latest = HashMap::new();
    for metric in receiver.metrics().iter().filter(|m| m.metric.name == name) {
        let Some(Data::Sum(sum)) = &metric.metric.data else {
            panic!("{name} is not a counter")
        };
        for point in &sum.data_points {
            let Some(number_data_point::Value::AsInt(value)) = point.value else {
                panic!("{name} counts in integers")
            };
            latest.insert(attr(&point.attributes, "payment.currency").unwrap(), value);
        }
    }
    latest
}

/// `payments.amount` points per `payment.outcome`: (count, sum) of the latest export.
fn amounts(receiver: &OtlpReceiver) -> BTreeMap<String, (u64, f64)> {
    let mut latest = BTreeMap::new();
    for metric in receiver
        .metrics()
        .iter()
        .filter(|m| m.metric.name == "payments.amount")
    {
        let Some(Data::Histogram(histogram)) = &metric.metric.data else {
            panic!("payments.amount is not a histogram")
        };
        for point in &histogram.data_points {
            assert_eq!(
                attr(&point.attributes, "payment.currency").as_deref(),
                Some("USD")
            );
            let outcome = attr(&point.attributes, "payment.outcome").unwrap();
            latest.insert(outcome, (point.count, point.sum.unwrap_or_default()));
        }
    }
    latest
}

/// The latest value of `payments.voided`, whose points carry no attributes; `None` when it
/// was never exported.
fn voided(receiver: &OtlpReceiver) -> Option<i64> {
    let mut latest = None;
    for metric in receiver
        .metrics()
        .iter()
        .filter(|m| m.metric.name == "payments.voided")
    {
        let Some(Data::Sum(sum)) = &metric.metric.data else {
            panic!("payments.voided is not a counter")
        };
        for point in &sum.data_points {
            assert!(point.attributes.is_empty(), "{:?}", point.attributes);
            let Some(number_data_point::Value::AsInt(value)) = point.value else {
                panic!("payments.voided counts in integers")
            };
            latest = Some(value);
        }
    }
    latest
}

fn usd(count: i64) -> HashMap<String, i64> {
    HashMap::from([("USD".to_owned(), count)])
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_authorized_declined_and_timeout() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);

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

    // Stopping flushes the last metrics: the cumulative totals of the three attempts.
    assert!(service.stop().unwrap().success());
    assert_eq!(counter(&receiver, "payments.authorized"), usd(1));
    assert_eq!(counter(&receiver, "payments.declined"), usd(1));
    assert_eq!(
        counter(&receiver, "payments.timed_out"),
        usd(1),
        "a gateway timeout is counted too"
    );
    let expected: BTreeMap<_, _> = ["authorized", "declined", "timeout"]
        .into_iter()
        .map(|outcome| (outcome.to_owned(), (1, 12_345.0)))
        .collect();
    assert_eq!(amounts(&receiver), expected);

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

    let authorized = span(&spans, "payment.authorize", "o-tok_visa");
    assert_eq!(
        authorized.attr("payment.outcome").as_deref(),
        Some("authorized")
    );
    assert!(!is_error(authorized));
    assert!(authorized.attr("payment.id").unwrap().starts_with("pay_"));

    let timed_out = span(&spans, "payment.authorize", "o-tok_timeout");
    assert!(is_error(timed_out));
    assert_eq!(
        timed_out.attr("payment.outcome").as_deref(),
        Some("timeout")
    );
    let gateway = spans
        .iter()
        .find(|s| {
            s.span.name == "payment.gateway_call" && s.parent_span_id() == timed_out.span_id()
        })
        .expect("gateway call span under payment.authorize");
    assert!(is_error(gateway));
    assert!(gateway.span.events.iter().any(|e| e.name == "exception"));
    assert_eq!(gateway.attr("error.type").as_deref(), Some("timeout"));
    assert_eq!(
        gateway.attr("payment.gateway.decision").as_deref(),
        Some("timeout")
    );
    // Every gateway call names the gateway with current attributes, not the deprecated
    // peer.service.
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == "payment.gateway_call")
        .collect();
    assert_eq!(calls.len(), 3);
    for call in calls {
        assert_eq!(call.attr("peer.service"), None);
        assert_eq!(
            call.attr("service.peer.name").as_deref(),
            Some("card-gateway")
        );
        assert_eq!(call.attr("server.address").as_deref(), Some("card-gateway"));
    }
    let timed_out_server = spans
        .iter()
        .find(|s| s.span_id() == timed_out.parent_span_id())
        .unwrap();
    assert!(is_error(timed_out_server), "504 is a server error");
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_timeout_scenario_times_out_every_card() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);
    set_scenarios(&service, &["payment_gateway_timeout"]).await;
    let (status, body) = pay(&service, "tok_visa").await;
    assert_eq!(status, 504);
    assert_eq!(body["status"], "timeout");
    assert!(service.stop().unwrap().success());

    // A card that would pass still times out, and the telemetry says so.
    let spans = receiver.spans();
    let authorize = span(&spans, "payment.authorize", "o-tok_visa");
    assert!(is_error(authorize));
    assert_eq!(
        authorize.attr("payment.outcome").as_deref(),
        Some("timeout")
    );
    assert_eq!(counter(&receiver, "payments.timed_out"), usd(1));
    assert_eq!(counter(&receiver, "payments.authorized"), HashMap::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_payment_is_400_with_a_clear_message() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);
    let (status, body) = pay(&service, "4111111111111111").await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("card_token"),
        "{body}"
    );
    assert!(service.stop().unwrap().success());

    // Refused before the gateway: the caller's mistake, no payment attempted or counted.
    let spans = receiver.spans();
    let server = spans
        .iter()
        .find(|s| s.span.name == "POST /payments")
        .expect("server span exported");
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("400")
    );
    assert!(!is_error(server), "a 4xx is not a server error");
    assert!(
        !spans
            .iter()
            .any(|s| s.span.name == "payment.authorize" || s.span.name == "payment.gateway_call")
    );
    assert!(amounts(&receiver).is_empty(), "nothing reached the gateway");
}

#[tokio::test(flavor = "multi_thread")]
async fn void_lifts_an_authorisation_and_is_counted() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);
    let (status, body) = pay(&service, "tok_visa").await;
    assert_eq!(status, 201, "{body}");
    let payment_id = body["payment_id"].as_str().unwrap().to_owned();

    let (status, body) = void(&service, &payment_id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"payment_id": payment_id, "status": "voided"}));
    assert!(service.stop().unwrap().success());

    assert_eq!(voided(&receiver), Some(1));
    assert_eq!(
        counter(&receiver, "payments.authorized"),
        usd(1),
        "a void does not undo the count of the authorisation it lifts"
    );
    let spans = receiver.spans();
    let void_span = spans
        .iter()
        .find(|s| s.span.name == "payment.void")
        .expect("payment.void span");
    assert_eq!(void_span.attr("payment.id"), Some(payment_id));
    assert_eq!(void_span.attr("payment.outcome").as_deref(), Some("voided"));
    assert!(!is_error(void_span));
    let server = spans
        .iter()
        .find(|s| s.span_id() == void_span.parent_span_id())
        .unwrap();
    assert_eq!(server.span.name, "POST /payments/{id}/void");
    assert_eq!(
        server.attr("http.response.status_code").as_deref(),
        Some("200")
    );
    let gateway = spans
        .iter()
        .find(|s| s.parent_span_id() == void_span.span_id())
        .expect("the gateway call under payment.void");
    assert_eq!(gateway.span.name, "payment.gateway_call");
    assert_eq!(
        gateway.attr("payment.gateway.operation").as_deref(),
        Some("void")
    );
    assert_eq!(
        gateway.attr("payment.gateway.decision").as_deref(),
        Some("voided")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn void_of_an_id_this_service_never_issues_is_400() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);
    let (status, body) = void(&service, "pay_123").await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("pay_123") && message.contains("32 lower-case hex digits"),
        "{message}"
    );
    assert!(service.stop().unwrap().success());

    // Refused before the gateway: no void span, nothing counted.
    let spans = receiver.spans();
    let server = spans
        .iter()
        .find(|s| s.span.name == "POST /payments/{id}/void")
        .expect("server span exported");
    assert!(!is_error(server), "a 4xx is not a server error");
    assert!(!spans.iter().any(|s| s.span.name == "payment.void"));
    assert_eq!(voided(&receiver), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_timeout_scenario_times_out_voids_too() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let (service, _dir) = start(&receiver);
    let (status, body) = pay(&service, "tok_visa").await;
    assert_eq!(status, 201, "{body}");
    let payment_id = body["payment_id"].as_str().unwrap().to_owned();
    set_scenarios(&service, &["payment_gateway_timeout"]).await;

    let (status, body) = void(&service, &payment_id).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["status"], "timeout");
    assert_eq!(body["payment_id"], payment_id.as_str());
    assert!(
        body["reason"].as_str().unwrap().contains("300 ms"),
        "{body}"
    );
    assert!(service.stop().unwrap().success());

    let spans = receiver.spans();
    let void_span = spans
        .iter()
        .find(|s| s.span.name == "payment.void")
        .expect("payment.void span");
    assert!(is_error(void_span));
    assert_eq!(
        void_span.attr("payment.outcome").as_deref(),
        Some("timeout")
    );
    let gateway = spans
        .iter()
        .find(|s| s.parent_span_id() == void_span.span_id())
        .expect("the gateway call under payment.void");
    assert_eq!(gateway.attr("error.type").as_deref(), Some("timeout"));
    assert_eq!(
        voided(&receiver),
        None,
        "a void that timed out is not counted"
    );
}

async fn capture(service: &ServiceProcess, payment_id: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/payments/{payment_id}/capture", service.url()))
        .json(&json!({"order_id": "o-capture"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn captured_count(receiver: &OtlpReceiver) -> i64 {
    receiver
        .metrics()
        .iter()
        .filter(|m| m.metric.name == "payments.captured")
        .filter_map(|m| match &m.metric.data {
            Some(Data::Sum(sum)) => sum.data_points.last().map(|p| match p.value {
                Some(number_data_point::Value::AsInt(v)) => v,
                _ => 0,
            }),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// A capture happens once: again (a message delivered twice) answers "already captured"
/// without asking the gateway, across a restart too; a gateway timeout captures nothing
/// and may be retried.
#[tokio::test(flavor = "multi_thread")]
async fn a_payment_is_captured_once_however_often_it_is_asked() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let service = start_in(&receiver, dir.path());
    let (status, payment) = pay(&service, "tok_visa").await;
    assert_eq!(status, 201, "{payment}");
    let id = payment["payment_id"].as_str().unwrap().to_owned();

    set_scenarios(&service, &["payment_gateway_timeout"]).await;
    let (status, body) = capture(&service, &id).await;
    assert_eq!((status, body["status"].as_str()), (504, Some("timeout")));
    set_scenarios(&service, &[]).await;

    let (status, first) = capture(&service, &id).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["already_captured"], false);
    let (status, again) = capture(&service, &id).await;
    assert_eq!(
        (status, again["already_captured"].as_bool()),
        (200, Some(true))
    );

    assert!(service.stop().unwrap().success());
    let service = start_in(&receiver, dir.path());
    let (status, after_restart) = capture(&service, &id).await;
    assert_eq!(
        (status, after_restart["already_captured"].as_bool()),
        (200, Some(true))
    );
    assert!(service.stop().unwrap().success());

    let gateway_captures = receiver
        .spans()
        .iter()
        .filter(|s| {
            s.span.name == "payment.gateway_call"
                && s.attr("payment.gateway.operation").as_deref() == Some("capture")
                && s.attr("payment.gateway.decision").as_deref() == Some("captured")
        })
        .count();
    assert_eq!(gateway_captures, 1, "the gateway captured once");
    assert_eq!(captured_count(&receiver), 1, "payments.captured counts one");
}
