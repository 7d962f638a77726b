//! The `fulfilment` function: triggered by the queue `orders` with batches of
//! `order.placed` events (SQS → Lambda, or the emulator's event-source poller, which sends
//! the same events), it fulfils each order: captures its authorised payment
//! (payment-service) and commits its stock reservation (inventory-service). Both calls are
//! idempotent, because the queue delivers at least once.
//!
//! **Partial batch failure.** A message that cannot be fulfilled (a poison body, a service
//! that is down) is reported in `batchItemFailures` and only it returns to the queue, as
//! `ReportBatchItemFailures` asks; the rest of the batch is done and deleted. After the
//! queue's `maxReceiveCount` attempts it moves to `orders-dlq`.
//!
//! **Telemetry, to the messaging conventions.** An invocation is one `process orders`
//! CONSUMER span, the root of its own trace (a batch has many parents, a span only one),
//! that links to every message's producer span (`send orders`, in the checkout's trace) and
//! carries `messaging.batch.message_count` and the FaaS attributes; under it, one
//! `process orders` span per message, linked to that message's producer, in whose context
//! the calls to payment and inventory are made. Telemetry is flushed before the function
//! answers, as fraud-check does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::metrics::Counter;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_semantic_conventions::attribute as semconv;
use serde::Deserialize;
use telemetry::http_client::TracedClient;
use telemetry::messaging::{self, Consumer, Delivery, MessageAttributes};
use tracing::Instrument as _;

use crate::flush::{FlushFn, Flusher};
use crate::metrics::InvocationMetrics;

static COLD_START: AtomicBool = AtomicBool::new(true);

/// The queue whose messages this function handles.
pub const QUEUE: &str = "orders";

/// What the function is told about an order.
#[derive(Debug, Deserialize)]
struct OrderPlaced {
    order_id: String,
    payment_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    #[error("the message body is not an order.placed event: {0}")]
    Poison(String),
    #[error("order {0} has no payment to capture")]
    NoPayment(String),
    #[error("{service} answered {status}: {body}")]
    Refused {
        service: &'static str,
        status: u16,
        body: String,
    },
    #[error("{service} could not be reached: {source}")]
    Unreachable {
        service: &'static str,
        source: reqwest::Error,
    },
}

/// Where the function finds the services it calls.
#[derive(Debug, Clone)]
pub struct Services {
    /// `PAYMENT_URL`, default `http://127.0.0.1:8081`.
    pub payment_url: String,
    /// `INVENTORY_URL`, default `http://127.0.0.1:8082`.
    pub inventory_url: String,
}

impl Services {
    pub fn from_env() -> Self {
        let url = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            payment_url: url("PAYMENT_URL", "http://127.0.0.1:8081"),
            inventory_url: url("INVENTORY_URL", "http://127.0.0.1:8082"),
        }
    }
}

/// The fulfilment function, configured once per execution environment.
#[derive(Clone)]
pub struct FulfilmentFunction {
    function_name: String,
    function_version: String,
    services: Services,
    client: TracedClient,
    consumer: Consumer,
    metrics: InvocationMetrics,
    orders: Counter<u64>,
    flusher: Flusher,
}

impl FulfilmentFunction {
    pub fn new(services: Services, flush: FlushFn) -> Self {
        let meter = opentelemetry::global::meter(env!("CARGO_PKG_NAME"));
        Self {
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "fulfilment".to_owned()),
            function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|_| "$LATEST".to_owned()),
            services,
            client: TracedClient::new(Duration::from_secs(5)),
            consumer: Consumer::new(messaging::LOCAL_QUEUE_SYSTEM, QUEUE),
            metrics: InvocationMetrics::for_trigger(&meter, "pubsub"),
            orders: meter
                .u64_counter("fulfilment.orders")
                .with_unit("{order}")
                .with_description("Orders the fulfilment handled, by outcome (fulfilled, failed)")
                .build(),
            flusher: Flusher::new(flush),
        }
    }

    /// Handles one batch; see the module docs.
    pub async fn invoke(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, Diagnostic> {
        let started = Instant::now();
        let coldstart = COLD_START.swap(false, Ordering::SeqCst);
        let LambdaEvent { payload, context } = event;
        let carried: Vec<(String, MessageAttributes)> = payload
            .records
            .iter()
            .map(|record| {
                (
                    record.message_id.clone().unwrap_or_default(),
                    carried_context(record),
                )
            })
            .collect();
        let deliveries: Vec<Delivery<'_>> = carried
            .iter()
            .map(|(message_id, attributes)| Delivery {
                message_id,
                attributes,
            })
            .collect();
        let batch = self
            .consumer
            .start_batch(&opentelemetry::Context::new(), &deliveries);
        batch.span().set_attributes([
            KeyValue::new(semconv::FAAS_TRIGGER, "pubsub"),
            KeyValue::new(semconv::FAAS_INVOCATION_ID, context.request_id.clone()),
            KeyValue::new(semconv::FAAS_COLDSTART, coldstart),
            KeyValue::new(semconv::CLOUD_PROVIDER, "aws"),
            KeyValue::new(semconv::CLOUD_PLATFORM, "aws_lambda"),
            KeyValue::new(
                semconv::CLOUD_RESOURCE_ID,
                context.invoked_function_arn.clone(),
            ),
            KeyValue::new("faas.name", self.function_name.clone()),
            KeyValue::new("faas.version", self.function_version.clone()),
        ]);

        let mut response = SqsBatchResponse::default();
        for (record, delivery) in payload.records.iter().zip(&deliveries) {
            let message = self.consumer.start_message(&batch, delivery);
            let outcome = self.fulfil(record).with_context(message.clone()).await;
            let label = match &outcome {
                Ok(()) => "fulfilled",
                Err(_) => "failed",
            };
            self.orders
                .add(1, &[KeyValue::new("fulfilment.outcome", label)]);
            match outcome {
                Ok(()) => messaging::end::<FulfilError>(&message, None),
                Err(err) => {
                    messaging::end(&message, Some(&err));
                    response.add_failure(delivery.message_id.to_owned());
                }
            }
        }
        batch.span().set_attribute(KeyValue::new(
            "fulfilment.failed_messages",
            response.batch_item_failures.len() as i64,
        ));
        self.metrics
            .record_invocation(started.elapsed(), coldstart, false);
        batch.span().end();
        self.flusher
            .flush_invocation("fulfilment", &context.request_id, context.deadline())
            .await;
        Ok(response)
    }

    /// Fulfils one order: capture, then commit. Either may have happened already (the
    /// message was delivered before); both services then answer that it is done.
    async fn fulfil(&self, record: &SqsMessage) -> Result<(), FulfilError> {
        let body = record.body.as_deref().unwrap_or_default();
        let order: OrderPlaced = match serde_json::from_str(body) {
            Ok(order) => order,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the message");
                return Err(FulfilError::Poison(err.to_string()));
            }
        };
        let span = tracing::info_span!("fulfilment.fulfil_order", order.id = %order.order_id);
        async move {
            let payment_id = order
                .payment_id
                .as_deref()
                .ok_or_else(|| FulfilError::NoPayment(order.order_id.clone()))?;
            self.call(
                "payment-service",
                format!(
                    "{}/payments/{payment_id}/capture",
                    self.services.payment_url
                ),
                &order.order_id,
            )
            .await?;
            self.call(
                "inventory-service",
                format!("{}/inventory/commit", self.services.inventory_url),
                &order.order_id,
            )
            .await?;
            tracing::info!("order fulfilled");
            Ok(())
        }
        .instrument(span)
        .await
        .inspect_err(|err: &FulfilError| {
            tracing::error!(error = %err, "fulfilling the order failed");
        })
    }

    async fn call(
        &self,
        service: &'static str,
        url: String,
        order_id: &str,
    ) -> Result<(), FulfilError> {
        let request = self
            .client
            .post(url)
            .json(&serde_json::json!({ "order_id": order_id }));
        let response = self
            .client
            .send(request)
            .await
            .map_err(|source| FulfilError::Unreachable { service, source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(FulfilError::Refused {
            service,
            status: status.as_u16(),
            body,
        })
    }
}

/// The trace context a message carries: its W3C message attributes (`traceparent`,
/// `tracestate`, `baggage`, as the producer sent them); failing those, the `AWSTraceHeader`
/// system attribute that SQS sets from an X-Ray-traced sender.
fn carried_context(record: &SqsMessage) -> MessageAttributes {
    let mut carried: MessageAttributes = record
        .message_attributes
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value.string_value.clone()?)))
        .collect();
    if !carried.contains_key("traceparent")
        && let Some(traceparent) = record
            .attributes
            .get("AWSTraceHeader")
            .and_then(|header| messaging::traceparent_from_xray(header))
    {
        carried.insert("traceparent".to_owned(), traceparent);
    }
    carried
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message_attributes: serde_json::Value, xray: Option<&str>) -> SqsMessage {
        let mut attributes = serde_json::json!({"ApproximateReceiveCount": "1"});
        if let Some(header) = xray {
            attributes["AWSTraceHeader"] = header.into();
        }
        serde_json::from_value(serde_json::json!({
            "messageId": "m1",
            "body": "{}",
            "attributes": attributes,
            "messageAttributes": message_attributes,
        }))
        .unwrap()
    }

    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    #[test]
    fn without_w3c_attributes_the_aws_trace_header_is_the_context() {
        let carried = carried_context(&record(serde_json::json!({}), Some(XRAY)));
        assert_eq!(
            carried["traceparent"],
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
    }

    #[test]
    fn the_producers_w3c_context_comes_before_the_aws_trace_header() {
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let attributes = serde_json::json!({
            "traceparent": {"stringValue": w3c, "dataType": "String"},
            "baggage": {"stringValue": "customer.tier=gold", "dataType": "String"},
        });
        let carried = carried_context(&record(attributes, Some(XRAY)));
        assert_eq!(carried["traceparent"], w3c);
        assert_eq!(carried["baggage"], "customer.tier=gold");
        assert!(carried_context(&record(serde_json::json!({}), None)).is_empty());
    }
}
