//! Messaging instrumentation, to the messaging semantic conventions: the trace context
//! carried in a message's attributes, the PRODUCER span of a send, and the spans of a
//! consumer that handles messages in batches (one `process` span per batch that **links**
//! to every message's producer, since a batch has many parents and a span only one).
//!
//! The spans are made with the OpenTelemetry API: links and a chosen parent are set when a
//! span starts, which a `tracing` span cannot express. `tracing` spans opened under them
//! (with their context current) are their children as usual.

use std::collections::BTreeMap;

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as semconv;

/// A message's attributes: string keys and values, as SQS message attributes are used here.
pub type MessageAttributes = BTreeMap<String, String>;

/// `messaging.system` of the lab's local queue (the `queue` crate), which has SQS's
/// semantics but is not SQS; the Kind lab's queue is `aws_sqs`.
pub const LOCAL_QUEUE_SYSTEM: &str = "otel_lab_queue";

/// `messaging.system` of Amazon SQS (the Kind lab's queue, in LocalStack).
pub const SQS_SYSTEM: &str = "aws_sqs";

const INSTRUMENTATION_SCOPE: &str = "telemetry.messaging";

struct AttributesInjector<'a>(&'a mut MessageAttributes);

impl Injector for AttributesInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct AttributesExtractor<'a>(&'a MessageAttributes);

impl Extractor for AttributesExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// `cx`'s span and baggage as message attributes (`traceparent`, `tracestate`, `baggage`).
pub fn inject(cx: &Context) -> MessageAttributes {
    let mut attributes = MessageAttributes::new();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut AttributesInjector(&mut attributes));
    });
    attributes
}

/// The context a message's attributes carry; empty when they carry none.
pub fn extract(attributes: &MessageAttributes) -> Context {
    global::get_text_map_propagator(|propagator| {
        propagator.extract(&AttributesExtractor(attributes))
    })
}

/// The W3C `traceparent` for an X-Ray trace header (`Root=1-<8 hex>-<24 hex>;Parent=<16
/// hex>;Sampled=<0|1>`, as SQS carries it in the `AWSTraceHeader` system attribute): the
/// X-Ray trace id without its version and dashes is the W3C trace id. `None` when the
/// header has no valid root or parent.
pub fn traceparent_from_xray(header: &str) -> Option<String> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for field in header.split(';') {
        match field.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value),
            Some(("Parent", value)) => parent = Some(value),
            Some(("Sampled", value)) => sampled = value == "1",
            _ => {}
        }
    }
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut root_parts = root?.split('-');
    let (version, epoch, random) = (root_parts.next()?, root_parts.next()?, root_parts.next()?);
    let parent = parent?;
    if version != "1" || root_parts.next().is_some() || !hex(epoch, 8) || !hex(random, 24) {
        return None;
    }
    if !hex(parent, 16) {
        return None;
    }
    let trace_id = format!("{epoch}{random}").to_ascii_lowercase();
    let span_id = parent.to_ascii_lowercase();
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    let flags = if sampled { "01" } else { "00" };
    Some(format!("00-{trace_id}-{span_id}-{flags}"))
}

/// Makes the spans of sending to one destination.
#[derive(Clone)]
pub struct Producer {
    tracer: std::sync::Arc<BoxedTracer>,
    system: &'static str,
    destination: String,
}

impl Producer {
    /// `system` is `messaging.system`, `destination` the queue's name.
    pub fn new(system: &'static str, destination: impl Into<String>) -> Self {
        Self {
            tracer: std::sync::Arc::new(global::tracer(INSTRUMENTATION_SCOPE)),
            system,
            destination: destination.into(),
        }
    }

    /// Starts the `send {destination}` PRODUCER span as a child of `parent` and returns
    /// its context and the attributes that carry it in the message. `extra` are the
    /// caller's own attributes (an order id, say).
    pub fn start_send(
        &self,
        parent: &Context,
        extra: Vec<KeyValue>,
    ) -> (Context, MessageAttributes) {
        let mut attributes = vec![
            KeyValue::new(semconv::MESSAGING_SYSTEM, self.system),
            KeyValue::new(
                semconv::MESSAGING_DESTINATION_NAME,
                self.destination.clone(),
            ),
            KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "send"),
            KeyValue::new(semconv::MESSAGING_OPERATION_NAME, "send"),
        ];
        attributes.extend(extra);
        let span = self
            .tracer
            .span_builder(format!("send {}", self.destination))
            .with_kind(SpanKind::Producer)
            .with_attributes(attributes)
            .start_with_context(&*self.tracer, parent);
        let cx = parent.with_span(span);
        let carried = inject(&cx);
        (cx, carried)
    }
}

/// Ends a send span: with the id the queue gave the message, or failed with `error`.
pub fn end_send<E: std::fmt::Display>(cx: &Context, outcome: Result<&str, &E>) {
    let span = cx.span();
    match outcome {
        Ok(message_id) => span.set_attribute(KeyValue::new(
            semconv::MESSAGING_MESSAGE_ID,
            message_id.to_owned(),
        )),
        Err(error) => {
            span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, "send_failed"));
            span.set_status(Status::error(error.to_string()));
        }
    }
    span.end();
}

/// One message of a batch, as the consumer's spans need it.
pub struct Delivery<'a> {
    pub message_id: &'a str,
    pub attributes: &'a MessageAttributes,
}

/// Makes the spans of a consumer that handles batches from one destination.
#[derive(Clone)]
pub struct Consumer {
    tracer: std::sync::Arc<BoxedTracer>,
    system: &'static str,
    destination: String,
}

impl Consumer {
    pub fn new(system: &'static str, destination: impl Into<String>) -> Self {
        Self {
            tracer: std::sync::Arc::new(global::tracer(INSTRUMENTATION_SCOPE)),
            system,
            destination: destination.into(),
        }
    }

    fn base_attributes(&self) -> Vec<KeyValue> {
        vec![
            KeyValue::new(semconv::MESSAGING_SYSTEM, self.system),
            KeyValue::new(
                semconv::MESSAGING_DESTINATION_NAME,
                self.destination.clone(),
            ),
            KeyValue::new(semconv::MESSAGING_OPERATION_TYPE, "process"),
            KeyValue::new(semconv::MESSAGING_OPERATION_NAME, "process"),
        ]
    }

    /// Starts the `process {destination}` CONSUMER span of a whole batch under `parent`
    /// (the invocation's span, or an empty context for a root): it links to the producer
    /// context of every message that carries one and records `messaging.batch.message_count`.
    pub fn start_batch(&self, parent: &Context, messages: &[Delivery<'_>]) -> Context {
        let links: Vec<Link> = messages
            .iter()
            .filter_map(|m| {
                let producer = extract(m.attributes);
                let span_context = producer.span().span_context().clone();
                span_context.is_valid().then(|| {
                    Link::new(
                        span_context,
                        vec![KeyValue::new(
                            semconv::MESSAGING_MESSAGE_ID,
                            m.message_id.to_owned(),
                        )],
                        0,
                    )
                })
            })
            .collect();
        let mut attributes = self.base_attributes();
        attributes.push(KeyValue::new(
            semconv::MESSAGING_BATCH_MESSAGE_COUNT,
            messages.len() as i64,
        ));
        let span = self
            .tracer
            .span_builder(format!("process {}", self.destination))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&*self.tracer, parent);
        parent.with_span(span)
    }

    /// Starts the `process {destination}` span of one message of a batch, a child of the
    /// batch's span (`batch`) that also links to the message's producer context, as the
    /// conventions describe for batch consumers. Its context is what the handling of that
    /// message runs in.
    pub fn start_message(&self, batch: &Context, message: &Delivery<'_>) -> Context {
        let producer = extract(message.attributes);
        let span_context: SpanContext = producer.span().span_context().clone();
        let mut attributes = self.base_attributes();
        attributes.push(KeyValue::new(
            semconv::MESSAGING_MESSAGE_ID,
            message.message_id.to_owned(),
        ));
        let mut builder = self
            .tracer
            .span_builder(format!("process {}", self.destination))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attributes);
        if span_context.is_valid() {
            builder = builder.with_links(vec![Link::with_context(span_context)]);
        }
        let span = builder.start_with_context(&*self.tracer, batch);
        // The message's baggage (customer tier, session) travels on with its handling.
        let mut cx = batch.with_span(span);
        use opentelemetry::baggage::BaggageExt as _;
        if !producer.baggage().is_empty() {
            let mut baggage = opentelemetry::baggage::Baggage::new();
            for (key, (value, metadata)) in producer.baggage() {
                let _ = baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
            }
            cx = cx.with_baggage(baggage);
        }
        cx
    }
}

/// Ends a span started by this module: failed with `error`, or fine.
pub fn end<E: std::fmt::Display>(cx: &Context, error: Option<&E>) {
    let span = cx.span();
    if let Some(error) = error {
        span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, "_OTHER"));
        span.set_status(Status::error(error.to_string()));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips_through_message_attributes() {
        global::set_text_map_propagator(
            opentelemetry::propagation::TextMapCompositePropagator::new(vec![
                Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
                Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
            ]),
        );
        let span_context = SpanContext::new(
            opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            opentelemetry::trace::TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        let cx = Context::new().with_remote_span_context(span_context.clone());
        let attributes = inject(&cx);
        assert_eq!(
            attributes["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let back = extract(&attributes);
        assert_eq!(
            back.span().span_context().trace_id(),
            span_context.trace_id()
        );
        assert!(
            !extract(&MessageAttributes::new())
                .span()
                .span_context()
                .is_valid()
        );
    }

    #[test]
    fn an_xray_trace_header_reads_as_a_traceparent() {
        // The example of SQS's documentation of AWSTraceHeader.
        assert_eq!(
            traceparent_from_xray(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            )
            .as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
        );
        assert_eq!(
            traceparent_from_xray(
                "Parent=53995C3F42CD8AD8;Root=1-5759E988-BD862E3FE1BE46A994272793"
            )
            .as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"),
            "any order, any case; not sampled unless it says so"
        );
        for bad in [
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3f;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "",
        ] {
            assert_eq!(traceparent_from_xray(bad), None, "{bad:?}");
        }
    }
}
