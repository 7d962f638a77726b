//! The event source mapping: polls a queue (the lab's SQS-shaped `queue` file) and invokes
//! the function with batches of messages, in the event shape SQS → Lambda sends, handling
//! the answer as the Lambda service does:
//! - a successful invocation deletes the batch's messages, except those its
//!   `batchItemFailures` names (`ReportBatchItemFailures`): those stay, and come back when
//!   their visibility timeout ends;
//! - a failed invocation (function error, timeout, crash) deletes nothing: the whole batch
//!   comes back;
//! - a message received more than `maxReceiveCount` times goes to the dead-letter queue
//!   (the queue's redrive policy) instead of being delivered again.
//!
//! A batch is what one receive returns, up to `batch_size`; with a batching window, the
//! poller keeps receiving until the batch is full or the window has passed. Nothing is held
//! in memory between receives: a poller stopped mid-batch loses nothing, the messages come
//! back after their visibility timeout.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, MeterProvider as _};
use queue::{Queues, Received, Redrive};
use serde_json::{Value, json};

use super::{Shared, event, invoke};

/// Where the function's messages come from, and how they are handed over.
#[derive(Debug, Clone)]
pub struct EventSourceConfig {
    /// The queue file (the `queue` crate's SQLite file) the producers write to.
    pub queue_file: PathBuf,
    /// The queue's name (`orders`).
    pub queue: String,
    /// Most messages in one invocation (SQS's default and maximum for a standard queue
    /// without a batching window: 10).
    pub batch_size: usize,
    /// How long to gather messages before invoking with a batch that is not full.
    pub batching_window: Duration,
    /// How long a received message stays hidden; AWS advises at least six times the
    /// function's timeout.
    pub visibility_timeout: Duration,
    /// The redrive policy: receives before a message goes to the dead-letter queue.
    pub redrive: Option<Redrive>,
    /// How often an empty queue is looked at again.
    pub poll_interval: Duration,
}

impl EventSourceConfig {
    pub fn new(queue_file: impl Into<PathBuf>, queue: impl Into<String>) -> Self {
        Self {
            queue_file: queue_file.into(),
            queue: queue.into(),
            batch_size: 10,
            batching_window: Duration::ZERO,
            visibility_timeout: Duration::from_secs(60),
            redrive: None,
            poll_interval: Duration::from_millis(200),
        }
    }

    fn queue_arn(&self, region: &str) -> String {
        format!("arn:aws:sqs:{region}:000000000000:{}", self.queue)
    }
}

/// Polls and invokes until the task is dropped.
pub(super) async fn poll(shared: Arc<Shared>, config: EventSourceConfig, queues: Arc<Queues>) {
    let name = shared.config.function_name.clone();
    let metrics = QueueMetrics::start(&config, &name, queues.clone());
    loop {
        let batch = match gather(&config, &queues, &metrics).await {
            Ok(batch) => batch,
            Err(err) => {
                eprintln!(
                    "lambda-emulator: cannot receive from queue {} ({}): {err}; trying again",
                    config.queue,
                    config.queue_file.display()
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(config.poll_interval).await;
            continue;
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let event = sqs_event(&batch, &config, &shared.config.region);
        // Lambda gives a queue-triggered invocation a trace id of its own; the messages'
        // traces are in their attributes.
        let xray = event::xray_trace_id(None);
        let outcome =
            invoke::invoke(&shared, &request_id, Bytes::from(event.to_string()), xray).await;
        let failed: HashSet<String> = match outcome {
            Ok(response) => match batch_item_failures(&response, &batch) {
                Ok(failed) => failed,
                Err(why) => {
                    eprintln!(
                        "lambda-emulator: {name} invocation {request_id}: {why}; the whole batch of {} returns to the queue",
                        batch.len()
                    );
                    batch.iter().map(|m| m.message_id.clone()).collect()
                }
            },
            Err(failure) => {
                eprintln!(
                    "lambda-emulator: {name} invocation {request_id} failed ({}); the whole batch of {} returns to the queue after its visibility timeout",
                    failure.message,
                    batch.len()
                );
                batch.iter().map(|m| m.message_id.clone()).collect()
            }
        };
        let done: Vec<String> = batch
            .iter()
            .filter(|m| !failed.contains(&m.message_id))
            .map(|m| m.receipt_handle.clone())
            .collect();
        metrics.handled(done.len(), failed.len());
        if !failed.is_empty() {
            eprintln!(
                "lambda-emulator: {name} invocation {request_id}: {} of {} messages failed; they return to the queue after the visibility timeout ({})",
                failed.len(),
                batch.len(),
                humantime::format_duration(config.visibility_timeout)
            );
        }
        let (queues, queue) = (queues.clone(), config.queue.clone());
        let deleted = tokio::task::spawn_blocking(move || {
            done.iter()
                .map(|handle| queues.delete(&queue, handle))
                .collect::<Result<Vec<bool>, _>>()
        })
        .await;
        match deleted {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => eprintln!(
                "lambda-emulator: deleting handled messages from {} failed: {err}; they will be delivered again",
                config.queue
            ),
            Err(err) => eprintln!("lambda-emulator: the delete task failed: {err}"),
        }
    }
}

/// One batch: a receive, and more receives within the batching window while it is not full.
async fn gather(
    config: &EventSourceConfig,
    queues: &Arc<Queues>,
    metrics: &QueueMetrics,
) -> Result<Vec<Received>, queue::Error> {
    let started = Instant::now();
    let mut batch = Vec::new();
    loop {
        let wanted = config.batch_size - batch.len();
        let (queues, c) = (queues.clone(), config.clone());
        let received = tokio::task::spawn_blocking(move || {
            queues.receive(&c.queue, wanted, c.visibility_timeout, c.redrive.as_ref())
        })
        .await
        .expect("a queue receive does not panic")?;
        if !received.dead_lettered.is_empty() {
            eprintln!(
                "lambda-emulator: moved {} message(s) received {} times to {}: {}",
                received.dead_lettered.len(),
                config.redrive.as_ref().map_or(0, |r| r.max_receive_count),
                config
                    .redrive
                    .as_ref()
                    .map_or("", |r| r.dead_letter_queue.as_str()),
                received.dead_lettered.join(", ")
            );
            metrics.dead_lettered(received.dead_lettered.len());
        }
        batch.extend(received.messages);
        let window_left = config.batching_window.saturating_sub(started.elapsed());
        if batch.len() >= config.batch_size || window_left.is_zero() || batch.is_empty() {
            return Ok(batch);
        }
        tokio::time::sleep(config.poll_interval.min(window_left)).await;
    }
}

/// The queue's metrics, as CloudWatch reports them for an SQS queue and its event source
/// mapping: messages waiting and in flight, the age of the oldest, and what became of the
/// messages handed to the function. Exported with a resource of their own (service
/// `{queue}-queue`), since this process's environment describes the function.
struct QueueMetrics {
    provider: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
    processed: Counter<u64>,
    failed: Counter<u64>,
    dead_lettered: Counter<u64>,
    attributes: [KeyValue; 2],
}

impl QueueMetrics {
    fn start(config: &EventSourceConfig, function_name: &str, queues: Arc<Queues>) -> Self {
        let provider = match telemetry::standalone_meter_provider(
            &format!("{}-queue", config.queue),
            vec![
                KeyValue::new("messaging.system", telemetry::messaging::LOCAL_QUEUE_SYSTEM),
                KeyValue::new("faas.name", function_name.to_owned()),
            ],
        ) {
            Ok(provider) => provider,
            Err(err) => {
                eprintln!("lambda-emulator: no queue metrics: {err:#}");
                None
            }
        };
        let meter = match &provider {
            Some(provider) => provider.meter("lambda-emulator"),
            None => opentelemetry::global::meter("lambda-emulator"),
        };
        let destination = |queue: &str| {
            [
                KeyValue::new("messaging.system", telemetry::messaging::LOCAL_QUEUE_SYSTEM),
                KeyValue::new("messaging.destination.name", queue.to_owned()),
            ]
        };
        let mut watched = vec![config.queue.clone()];
        if let Some(redrive) = &config.redrive {
            watched.push(redrive.dead_letter_queue.clone());
        }
        // One read of the queue file per export serves the three gauges.
        let read = move || -> Vec<([KeyValue; 2], queue::Stats)> {
            watched
                .iter()
                .filter_map(|queue| Some((destination(queue), queues.stats(queue).ok()?)))
                .collect()
        };
        let read = Arc::new(read);
        let visible = read.clone();
        meter
            .u64_observable_gauge("queue.messages.visible")
            .with_unit("{message}")
            .with_description(
                "Messages waiting to be received (ApproximateNumberOfMessagesVisible).",
            )
            .with_callback(move |observer| {
                for (attributes, stats) in visible() {
                    observer.observe(stats.visible, &attributes);
                }
            })
            .build();
        let in_flight = read.clone();
        meter
            .u64_observable_gauge("queue.messages.in_flight")
            .with_unit("{message}")
            .with_description(
                "Messages received and not yet deleted or back (ApproximateNumberOfMessagesNotVisible).",
            )
            .with_callback(move |observer| {
                for (attributes, stats) in in_flight() {
                    observer.observe(stats.in_flight, &attributes);
                }
            })
            .build();
        meter
            .f64_observable_gauge("queue.oldest_message.age")
            .with_unit("s")
            .with_description("Age of the oldest message in the queue (ApproximateAgeOfOldestMessage); 0 when empty.")
            .with_callback(move |observer| {
                for (attributes, stats) in read() {
                    let age = stats.oldest_age_ms.unwrap_or(0) as f64 / 1000.0;
                    observer.observe(age, &attributes);
                }
            })
            .build();
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit("{message}")
                .with_description(description)
                .build()
        };
        let metrics = Self {
            processed: counter(
                "queue.messages.processed",
                "Messages the function handled and the event source deleted.",
            ),
            failed: counter(
                "queue.messages.failed",
                "Messages whose handling failed; they return to the queue after the visibility timeout.",
            ),
            dead_lettered: counter(
                "queue.messages.dead_lettered",
                "Messages moved to the dead-letter queue after too many receives.",
            ),
            attributes: destination(&config.queue),
            provider,
        };
        // The series exist from the start, at zero: a dashboard and an alert can tell
        // "nothing failed" from "not measured".
        metrics.handled(0, 0);
        metrics.dead_lettered(0);
        metrics
    }

    fn handled(&self, processed: usize, failed: usize) {
        self.processed.add(processed as u64, &self.attributes);
        self.failed.add(failed as u64, &self.attributes);
    }

    fn dead_lettered(&self, count: usize) {
        self.dead_lettered.add(count as u64, &self.attributes);
    }
}

impl Drop for QueueMetrics {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // A last export, off the async threads (it blocks on the exporter); a process
            // that exits at once may not wait for it, and loses at most one interval.
            std::thread::spawn(move || {
                let _ = provider.shutdown_with_timeout(telemetry::SHUTDOWN_TIMEOUT);
            });
        }
    }
}

/// The event SQS → Lambda delivers for `batch`.
fn sqs_event(batch: &[Received], config: &EventSourceConfig, region: &str) -> Value {
    let arn = config.queue_arn(region);
    let records: Vec<Value> = batch
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes
                .iter()
                .map(|(key, value)| {
                    (
                        key.clone(),
                        json!({
                            "stringValue": value,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": "String",
                        }),
                    )
                })
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "md5OfBody": md5_hex(m.body.as_bytes()),
                "md5OfMessageAttributes": md5_of_message_attributes(&m.attributes),
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at_ms.to_string(),
                    "SenderId": "000000000000",
                    "ApproximateFirstReceiveTimestamp": m.sent_at_ms.to_string(),
                },
                "messageAttributes": attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

/// SQS's digest of string message attributes (`null` when there are none): for each
/// attribute in name order, its name, its data type, a transport byte (1: string) and its
/// value, each but the transport byte as a 4-byte big-endian length and the bytes.
fn md5_of_message_attributes(attributes: &std::collections::BTreeMap<String, String>) -> Value {
    use md5::Digest as _;
    fn field(digest: &mut md5::Md5, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("an SQS attribute is under 256 KiB");
        digest.update(len.to_be_bytes());
        digest.update(bytes);
    }
    if attributes.is_empty() {
        return Value::Null;
    }
    let mut digest = md5::Md5::new();
    for (name, value) in attributes {
        field(&mut digest, name.as_bytes());
        field(&mut digest, b"String");
        digest.update([1u8]);
        field(&mut digest, value.as_bytes());
    }
    Value::String(hex::encode(digest.finalize()))
}

/// The ids a response names in `batchItemFailures`. As in Lambda, an empty or `null`
/// response means all succeeded, and a failure naming no message of the batch fails it
/// all.
fn batch_item_failures(response: &[u8], batch: &[Received]) -> Result<HashSet<String>, String> {
    let value: Value =
        serde_json::from_slice(response).map_err(|e| format!("its response is not JSON ({e})"))?;
    let Some(failures) = value.get("batchItemFailures") else {
        return Ok(HashSet::new());
    };
    let Some(failures) = failures.as_array() else {
        return if failures.is_null() {
            Ok(HashSet::new())
        } else {
            Err("batchItemFailures is not a list".to_owned())
        };
    };
    let ids: HashSet<&str> = batch.iter().map(|m| m.message_id.as_str()).collect();
    failures
        .iter()
        .map(|failure| {
            let id = failure["itemIdentifier"].as_str().unwrap_or_default();
            if ids.contains(id) {
                Ok(id.to_owned())
            } else {
                Err(format!(
                    "batchItemFailures names {id:?}, not a message of the batch"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Received {
        Received {
            message_id: id.to_owned(),
            receipt_handle: format!("rh-{id}"),
            body: "{}".to_owned(),
            attributes: [("traceparent".to_owned(), "00-a-b-01".to_owned())].into(),
            sent_at_ms: 1,
            receive_count: 2,
        }
    }

    #[test]
    fn the_event_is_what_sqs_sends_lambda() {
        let config = EventSourceConfig::new("/q.db", "orders");
        let event = sqs_event(&[message("m1")], &config, "us-east-1");
        let parsed: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(event.clone()).unwrap();
        let record = &parsed.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m1"));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(record.md5_of_body.as_deref(), Some(md5_hex(b"{}").as_str()));
        assert!(record.md5_of_message_attributes.is_some());
        assert_eq!(
            record.message_attributes["traceparent"]
                .string_value
                .as_deref(),
            Some("00-a-b-01")
        );
        assert_eq!(
            record.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:orders")
        );
    }

    #[test]
    fn the_digests_are_sqss() {
        // What an SQS API (moto 5.2) answered to SendMessage of this body and these
        // attributes (MD5OfMessageBody, MD5OfMessageAttributes).
        let attributes = [
            (
                "traceparent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            ("event_type".to_owned(), "order.placed".to_owned()),
        ]
        .into();
        assert_eq!(
            md5_hex(br#"{"order_id":"o-1"}"#),
            "e4b8912ea567ceb1b683799b61fe13db"
        );
        assert_eq!(
            md5_of_message_attributes(&attributes),
            "cd5218ead8d4e0b57ef18944ded5416c"
        );
        assert_eq!(md5_of_message_attributes(&Default::default()), Value::Null);
    }

    #[test]
    fn batch_item_failures_are_read_as_lambda_reads_them() {
        let batch = [message("m1"), message("m2")];
        assert!(batch_item_failures(b"{}", &batch).unwrap().is_empty());
        assert!(batch_item_failures(b"null", &batch).unwrap().is_empty());
        assert!(
            batch_item_failures(br#"{"batchItemFailures":[]}"#, &batch)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            batch_item_failures(
                br#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#,
                &batch
            )
            .unwrap(),
            HashSet::from(["m2".to_owned()])
        );
        assert!(
            batch_item_failures(
                br#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#,
                &batch
            )
            .is_err()
        );
        assert!(batch_item_failures(b"not json", &batch).is_err());
    }
}
