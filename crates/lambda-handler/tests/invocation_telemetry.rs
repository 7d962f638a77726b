//! What the function exports, and when: the real emulator and `bootstrap` processes, and the
//! in-process OTLP receiver of `telemetry::testing`, over 127.0.0.1.

mod support;

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::metrics::v1::metric;
use serde_json::{Value as Json, json};
use support::{
    RunningEmulator, client, counter_value, latest_metric, otel_env, same_attributes, spans_named,
    start_function,
};
use telemetry::testing::OtlpReceiver;

/// Ten minutes: with these, the batch span and log processors and the periodic metric reader
/// would not export on their own during a test, so only the per-invocation flush can explain
/// telemetry that arrives with the response.
const EXPORT_ONLY_ON_FLUSH: [(&str, &str); 3] = [
    ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "600000"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
];

/// How long a test looks for what should already be there: the flush completes before the
/// function answers, so this only absorbs scheduling noise, and is far below any export delay.
const GRACE: Duration = Duration::from_millis(500);

fn order(customer_id: &str) -> Json {
    json!({
        "order_id": "ord-2001",
        "customer_id": customer_id,
        "amount_cents": 4_200,
        "item_count": 2,
    })
}

/// Invokes the function with `body` (and a caller's `traceparent`); returns the status, the
/// request id and the body.
async fn invoke(emulator: &RunningEmulator, body: &Json, traceparent: &str) -> (u16, String, Json) {
    let response = client()
        .post(&emulator.url)
        .header("traceparent", traceparent)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let request_id = response.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, request_id, response.json().await.unwrap())
}

#[tokio::test]
async fn spans_logs_and_metrics_are_in_the_receiver_when_the_response_arrives() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_function(&[], &otel_env(&receiver, &EXPORT_ONLY_ON_FLUSH)).await;

    // Twice: the first invocation is a cold start, the second runs in a warm environment
    // whose exporters have nothing else left to send.
    for (n, trace_id) in [
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "0af7651916cd43dd8448eb211c80319c",
    ]
    .into_iter()
    .enumerate()
    {
        let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
        let (status, request_id, body) = invoke(&emulator, &order("cust-42"), &traceparent).await;
        assert_eq!(status, 200, "{body}");

        let everything_arrived = receiver
            .wait_until(GRACE, |r| {
                let invocation = spans_named(r, "fraud-check")
                    .iter()
                    .any(|s| s.attr("faas.invocation_id").as_deref() == Some(&request_id));
                let score = spans_named(r, "fraud_check.score")
                    .iter()
                    .any(|s| s.trace_id() == trace_id);
                let log = r
                    .logs()
                    .iter()
                    .any(|l| l.trace_id() == trace_id && l.body().contains("scored order"));
                let invocations_measured =
                    latest_metric(r, "faas.invoke_duration").and_then(|m| match m.data {
                        Some(metric::Data::Histogram(h)) => {
                            Some(h.data_points.iter().map(|p| p.count).sum::<u64>())
                        }
                        _ => None,
                    }) == Some(n as u64 + 1);
                invocation && score && log && invocations_measured
            })
            .await;
        assert!(
            everything_arrived,
            "invocation {n}: the response came back before its telemetry was exported; \
             spans {:?}, {} log records, metrics {:?}",
            receiver
                .spans()
                .iter()
                .map(|s| (s.span.name.clone(), s.trace_id()))
                .collect::<Vec<_>>(),
            receiver.logs().len(),
            receiver
                .metrics()
                .iter()
                .map(|m| m.metric.name.clone())
                .collect::<Vec<_>>()
        );
    }
    emulator.stop().await;
}

#[tokio::test]
async fn invocations_cold_starts_and_decisions_are_counted_with_low_cardinality_labels() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let emulator = start_function(&[], &otel_env(&receiver, &EXPORT_ONLY_ON_FLUSH)).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    for (body, decision) in [
        (order("cust-1"), Some("approve")),
        (order("fraudster-9"), Some("reject")),
        (order("cust-2"), Some("approve")),
        // Scored by nobody: a 400 is an invocation but not a decision.
        (json!({"order_id": "x"}), None),
    ] {
        let (status, _, response) = invoke(&emulator, &body, traceparent).await;
        match decision {
            Some(decision) => {
                assert_eq!(status, 200, "{response}");
                assert_eq!(response["decision"], decision);
            }
            None => assert_eq!(status, 400, "{response}"),
        }
    }

    // The last flush carried the totals: no waiting beyond the grace.
    let totals_arrived = receiver
        .wait_until(GRACE, |r| {
            latest_metric(r, "faas.invoke_duration").is_some_and(|m| match m.data {
                Some(metric::Data::Histogram(h)) => {
                    h.data_points.iter().map(|p| p.count).sum::<u64>() == 4
                }
                _ => false,
            })
        })
        .await;
    assert!(
        totals_arrived,
        "{:?}",
        latest_metric(&receiver, "faas.invoke_duration")
    );

    let duration = latest_metric(&receiver, "faas.invoke_duration").unwrap();
    assert_eq!(duration.unit, "s");
    let Some(metric::Data::Histogram(histogram)) = &duration.data else {
        panic!("faas.invoke_duration is a histogram: {duration:?}");
    };
    let [point] = histogram.data_points.as_slice() else {
        panic!("one series (faas.trigger=http): {histogram:?}");
    };
    assert!(
        same_attributes(&point.attributes, &[("faas.trigger", "http")]),
        "{point:?}"
    );
    assert_eq!(
        point.explicit_bounds,
        lambda_handler::metrics::INVOKE_DURATION_BUCKETS,
        "the semantic conventions' buckets, in seconds"
    );
    // Scoring takes well under the smallest bucket (5 ms): seconds, not milliseconds.
    let sum = point.sum.unwrap();
    assert!(sum > 0.0 && sum < 4.0, "{sum}");

    let coldstarts = latest_metric(&receiver, "faas.coldstarts").expect("faas.coldstarts exported");
    assert_eq!(
        counter_value(&coldstarts, &[("faas.trigger", "http")]),
        Some(1)
    );

    let decisions =
        latest_metric(&receiver, "fraud_check.decisions").expect("fraud_check.decisions exported");
    assert_eq!(
        counter_value(&decisions, &[("fraud_check.decision", "approve")]),
        Some(2)
    );
    assert_eq!(
        counter_value(&decisions, &[("fraud_check.decision", "reject")]),
        Some(1)
    );
    let Some(metric::Data::Sum(sum)) = &decisions.data else {
        unreachable!("counter_value checked it is a sum")
    };
    assert_eq!(
        sum.data_points.len(),
        2,
        "one series per decision, no ids: {sum:?}"
    );
    assert!(
        latest_metric(&receiver, "faas.errors").is_none(),
        "no invocation failed"
    );
    emulator.stop().await;
}

/// Accepts connections and never answers, like a collector that is hung or blackholed.
async fn hung_collector() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_collector_that_never_answers_does_not_fail_the_fraud_check() {
    let (collector_url, collector) = hung_collector().await;
    let env = vec![
        ("OTEL_SDK_DISABLED".to_owned(), "false".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), collector_url),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            "http/protobuf".to_owned(),
        ),
    ];
    // Unbounded, the flush would wait 5 s for spans, then 5 s for logs, then for metrics:
    // past this timeout, and the caller would get a 504 for a fraud check that succeeded.
    let emulator = start_function(&["--timeout", "6s"], &env).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    for n in 0..2 {
        let started = Instant::now();
        let (status, _, body) = invoke(&emulator, &order("cust-42"), traceparent).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "invocation {n}: {body}");
        assert_eq!(body["decision"], "approve");
        assert!(
            took < Duration::from_secs(4),
            "invocation {n} took {took:?}: the flush must give up at its budget"
        );
    }
    assert_eq!(emulator.cold_starts(), 1, "the function never timed out");
    emulator.stop().await;
    collector.abort();
}
