//! The asynchronous hop over real processes: payment- and inventory-service binaries with
//! SQLite files, the queue file, the `lambda-emulator` binary polling it for the real
//! `fulfilment` function, and an OTLP receiver. The tests play the producer: they authorise
//! payments, reserve stock and send `order.placed` messages carrying a known traceparent,
//! as order-service's outbox relay does.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{RunningEmulator, otel_env, wait_for_spans};
use telemetry::testing::{OtlpReceiver, ServiceProcess, hex, workspace_binary};

const FULFILMENT: &str = env!("CARGO_BIN_EXE_fulfilment");

struct Services {
    payment: ServiceProcess,
    inventory: ServiceProcess,
}

impl Services {
    fn start(dir: &Path, receiver: &OtlpReceiver) -> Self {
        let env = |db: &str| {
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
                ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
                ("DATABASE_URL", dir.join(db).display().to_string()),
            ]
        };
        Self {
            payment: ServiceProcess::spawn(
                &workspace_binary("payment-service").unwrap(),
                &env("payments.db"),
            )
            .unwrap(),
            inventory: ServiceProcess::spawn(
                &workspace_binary("inventory-service").unwrap(),
                &env("inventory.db"),
            )
            .unwrap(),
        }
    }

    /// What checkout leaves behind for one order: stock reserved, payment authorised.
    async fn checkout(&self, order_id: &str) -> String {
        let client = reqwest::Client::new();
        let reserved = client
            .post(format!("{}/inventory/reserve", self.inventory.url()))
            .json(&json!({"order_id": order_id, "items": [{"sku": "KB-001", "quantity": 1}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(reserved.status(), 200);
        let payment: Value = client
            .post(format!("{}/payments", self.payment.url()))
            .json(&json!({"order_id": order_id, "amount_cents": 8999, "currency": "USD", "card_token": "tok_visa"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        payment["payment_id"].as_str().unwrap().to_owned()
    }

    /// Whether a capture of `payment_id` now would be a repeat.
    async fn already_captured(&self, payment_id: &str, order_id: &str) -> bool {
        let answer: Value = reqwest::Client::new()
            .post(format!(
                "{}/payments/{payment_id}/capture",
                self.payment.url()
            ))
            .json(&json!({"order_id": order_id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["already_captured"] == true
    }
}

/// A producer's traceparent for order `n`: trace `0..0n` (32 hex digits), span `n`.
fn traceparent(n: u64) -> (String, String, String) {
    let trace = format!("{n:032x}");
    let span = format!("{:016x}", 0xabc0 + n);
    (format!("00-{trace}-{span}-01"), trace, span)
}

fn send(queues: &queue::Queues, body: &str, traceparent: &str) -> String {
    let attributes = BTreeMap::from([
        ("traceparent".to_owned(), traceparent.to_owned()),
        ("event_type".to_owned(), "order.placed".to_owned()),
    ]);
    queues.send("orders", body, &attributes).unwrap()
}

async fn start_fulfilment(
    receiver: &OtlpReceiver,
    services: &Services,
    queue_file: &Path,
    args: &[&str],
) -> RunningEmulator {
    let env = otel_env(
        receiver,
        &[
            ("PAYMENT_URL", &services.payment.url()),
            ("INVENTORY_URL", &services.inventory.url()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let queue_file = queue_file.display().to_string();
    let mut all = vec![
        "--function-name",
        "fulfilment",
        "--no-function-url",
        "--queue-file",
        queue_file.as_str(),
    ];
    all.extend_from_slice(args);
    RunningEmulator::start(FULFILMENT.as_ref(), &all, &env).await
}

async fn wait_until_empty(queues: &queue::Queues, queue: &str, within: Duration) -> queue::Stats {
    let deadline = std::time::Instant::now() + within;
    loop {
        let stats = queues.stats(queue).unwrap();
        if stats.visible + stats.in_flight == 0 || std::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch of three messages is one invocation: one `process orders` span, the root of its
/// trace, linking to the three producers' contexts; one `process orders` span per message
/// under it, linked to its producer; the capture and the commit under those.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_is_one_invocation_span_linked_to_every_producer() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = Services::start(dir.path(), &receiver);
    let queue_file = dir.path().join("queue.db");
    let queues = queue::Queues::open(&queue_file).unwrap();
    let mut producers = Vec::new();
    let mut payments = Vec::new();
    for n in 1..=3 {
        let order_id = format!("o-batch-{n}");
        let payment_id = services.checkout(&order_id).await;
        let (tp, trace, span) = traceparent(n);
        let body = json!({"order_id": order_id, "payment_id": payment_id}).to_string();
        let message_id = send(&queues, &body, &tp);
        producers.push((trace, span, message_id));
        payments.push((payment_id, order_id));
    }
    // Sent before the poller starts, so its first receive takes all three.
    let emulator = start_fulfilment(&receiver, &services, &queue_file, &[]).await;
    let stats = wait_until_empty(&queues, "orders", Duration::from_secs(30)).await;
    assert_eq!(
        (stats.visible, stats.in_flight),
        (0, 0),
        "every message handled"
    );

    let process = wait_for_spans(&receiver, "process orders", 4).await;
    let batch: Vec<_> = process
        .iter()
        .filter(|s| s.span.parent_span_id.is_empty())
        .collect();
    assert_eq!(batch.len(), 1, "one invocation for the batch");
    let batch = batch[0];
    assert_eq!(batch.int_attr("messaging.batch.message_count"), Some(3));
    assert_eq!(batch.attr("faas.trigger").as_deref(), Some("pubsub"));
    assert_eq!(batch.service_name(), "fulfilment");
    let linked: HashSet<(String, String)> = batch
        .span
        .links
        .iter()
        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
        .collect();
    let expected: HashSet<(String, String)> = producers
        .iter()
        .map(|(trace, span, _)| (trace.clone(), span.clone()))
        .collect();
    assert_eq!(linked, expected, "the batch links to every producer");
    assert_ne!(
        batch.trace_id(),
        producers[0].0,
        "the invocation is a trace of its own"
    );

    let messages: Vec<_> = process
        .iter()
        .filter(|s| s.span.parent_span_id == batch.span.span_id)
        .collect();
    assert_eq!(messages.len(), 3);
    for message in &messages {
        assert_eq!(message.span.links.len(), 1);
        let link = &message.span.links[0];
        let (trace, _, message_id) = producers
            .iter()
            .find(|(trace, _, _)| *trace == hex(&link.trace_id))
            .expect("each message span links to its own producer");
        let _ = trace;
        assert_eq!(
            message.attr("messaging.message.id").as_deref(),
            Some(message_id.as_str())
        );
    }
    let message_ids: HashSet<String> = messages.iter().map(|m| m.span_id()).collect();
    let fulfil = wait_for_spans(&receiver, "fulfilment.fulfil_order", 3).await;
    assert!(
        fulfil
            .iter()
            .all(|s| message_ids.contains(&s.parent_span_id())),
        "each order is fulfilled under its message's span"
    );

    for (payment_id, order_id) in &payments {
        assert!(
            services.already_captured(payment_id, order_id).await,
            "{payment_id} captured"
        );
    }
    assert!(emulator.stop().await);
}

/// A poison message does not block its batch: the good order is fulfilled once, the poison
/// one is retried (visibility timeout 1 s) and after two receives lands in the dead-letter
/// queue, where it stays for someone to look at.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_message_is_retried_then_dead_lettered_without_holding_up_the_batch() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = Services::start(dir.path(), &receiver);
    let queue_file = dir.path().join("queue.db");
    let queues = queue::Queues::open(&queue_file).unwrap();
    let payment_id = services.checkout("o-good").await;
    let good = json!({"order_id": "o-good", "payment_id": payment_id}).to_string();
    send(&queues, &good, &traceparent(7).0);
    let poison = send(&queues, "this is not an order", &traceparent(8).0);

    let emulator = start_fulfilment(
        &receiver,
        &services,
        &queue_file,
        &["--visibility-timeout", "1s", "--max-receive-count", "2"],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while queues.stats("orders-dlq").unwrap().visible == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = queues.peek("orders-dlq", 10).unwrap();
    assert_eq!(dead.len(), 1, "the poison message is dead-lettered");
    assert_eq!(
        (dead[0].0.as_str(), dead[0].1.as_str()),
        (poison.as_str(), "this is not an order")
    );
    let stats = wait_until_empty(&queues, "orders", Duration::from_secs(10)).await;
    assert_eq!((stats.visible, stats.in_flight), (0, 0));

    // Two attempts at the poison message, each a failed `process orders` span.
    let failed = receiver
        .spans()
        .into_iter()
        .filter(|s| {
            s.span.name == "process orders"
                && s.attr("messaging.message.id").as_deref() == Some(poison.as_str())
        })
        .collect::<Vec<_>>();
    assert_eq!(
        failed.len(),
        2,
        "received twice before the dead-letter queue"
    );
    assert!(
        failed
            .iter()
            .all(|s| s.span.status.as_ref().is_some_and(|st| st.code == 2))
    );
    // The good order was captured once, in the first batch.
    let captures = receiver
        .spans()
        .into_iter()
        .filter(|s| {
            s.span.name == "payment.gateway_call"
                && s.attr("payment.gateway.decision").as_deref() == Some("captured")
        })
        .count();
    assert_eq!(captures, 1);
    assert!(services.already_captured(&payment_id, "o-good").await);

    // The queue's metrics tell the same story: one processed, the poison one failed twice
    // and dead-lettered, nothing waiting any more, and one message in the dead-letter queue.
    let orders = [
        ("messaging.system", "otel_lab_queue"),
        ("messaging.destination.name", "orders"),
    ];
    let counted = |name: &str| {
        support::latest_metric(&receiver, name).and_then(|m| support::counter_value(&m, &orders))
    };
    let settled = receiver
        .wait_until(Duration::from_secs(10), |_| {
            counted("queue.messages.dead_lettered") == Some(1)
                && counted("queue.messages.processed") == Some(1)
                && counted("queue.messages.failed") == Some(2)
        })
        .await;
    assert!(
        settled,
        "processed {:?}, failed {:?}, dead-lettered {:?}",
        counted("queue.messages.processed"),
        counted("queue.messages.failed"),
        counted("queue.messages.dead_lettered")
    );
    let gauges = support::latest_metric(&receiver, "queue.messages.visible").unwrap();
    let opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(gauge) = gauges.data.unwrap()
    else {
        panic!("queue.messages.visible is a gauge");
    };
    let visible = |queue: &str| {
        gauge
            .data_points
            .iter()
            .find(|p| {
                telemetry::testing::attr(&p.attributes, "messaging.destination.name").as_deref()
                    == Some(queue)
            })
            .and_then(|p| match p.value {
                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                    v,
                )) => Some(v),
                _ => None,
            })
    };
    assert_eq!(
        (visible("orders"), visible("orders-dlq")),
        (Some(0), Some(1))
    );
    let queue_metric = receiver
        .metrics()
        .into_iter()
        .find(|m| m.metric.name == "queue.messages.dead_lettered")
        .unwrap();
    assert_eq!(queue_metric.service_name(), "orders-queue");
    assert!(emulator.stop().await);
}

/// The consumer killed in the middle of a batch (the payment gateway is slow, so the
/// invocation is in flight) loses nothing: the batch comes back after its visibility
/// timeout and a new consumer fulfils every order, each captured once.
#[tokio::test(flavor = "multi_thread")]
async fn killing_the_consumer_mid_batch_loses_no_message() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = Services::start(dir.path(), &receiver);
    let queue_file = dir.path().join("queue.db");
    let queues = queue::Queues::open(&queue_file).unwrap();
    let mut payments = Vec::new();
    for n in 1..=4 {
        let order_id = format!("o-kill-{n}");
        let payment_id = services.checkout(&order_id).await;
        let body = json!({"order_id": order_id, "payment_id": payment_id}).to_string();
        send(&queues, &body, &traceparent(20 + n).0);
        payments.push((payment_id, order_id));
    }
    let slow = reqwest::Client::new()
        .post(format!("{}/admin/faults", services.payment.url()))
        .json(&json!({"latency_ms": 400}))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 200);

    let args = ["--visibility-timeout", "2s"];
    let first = start_fulfilment(&receiver, &services, &queue_file, &args).await;
    // Wait until the batch is in flight, then kill the emulator and its function at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queues.stats("orders").unwrap().in_flight == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(pid) = first.function_pid() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    drop(first);
    let left = queues.stats("orders").unwrap();
    assert!(
        left.visible + left.in_flight > 0,
        "killed before the batch was done: {left:?}"
    );

    let second = start_fulfilment(&receiver, &services, &queue_file, &args).await;
    let stats = wait_until_empty(&queues, "orders", Duration::from_secs(30)).await;
    assert_eq!(
        (stats.visible, stats.in_flight),
        (0, 0),
        "every message handled"
    );
    assert_eq!(queues.stats("orders-dlq").unwrap().visible, 0);
    for (payment_id, order_id) in &payments {
        assert!(
            services.already_captured(payment_id, order_id).await,
            "{payment_id} captured"
        );
    }
    // The gateway was asked to capture each payment once, killed invocation included.
    let gateway_captures = receiver
        .spans()
        .into_iter()
        .filter(|s| {
            s.span.name == "payment.gateway_call"
                && s.attr("payment.gateway.decision").as_deref() == Some("captured")
        })
        .count();
    assert_eq!(gateway_captures, payments.len());
    assert!(second.stop().await);
}
