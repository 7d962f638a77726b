//! An error-level `tracing` event marks the span it happens in as failed.
//!
//! tracing-opentelemetry does this itself when it turns events into span events; this crate
//! sends events to the logs signal only, so that layer no longer sees them and this one keeps
//! the rule: `tracing::error!` inside a span sets the span's status to Error, with the event's
//! message (and its `error` field, if any) as the status description.

use std::fmt;
use std::sync::OnceLock;

use opentelemetry::trace::{Status, TraceContextExt as _};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The layer; install it beside tracing-opentelemetry's, under the same span filter.
#[derive(Default)]
pub(crate) struct ErrorEventsFailSpans {
    /// The subscriber this layer is part of: reaching the OpenTelemetry span of a `tracing`
    /// span goes through it, and the global default is not reachable from inside an event.
    dispatch: OnceLock<WeakDispatch>,
}

impl<S> tracing_subscriber::Layer<S> for ErrorEventsFailSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let span = match event.parent() {
            Some(id) => ctx.span(id),
            None if event.is_contextual() => ctx.lookup_current(),
            None => None,
        };
        let Some(span) = span else {
            // No `tracing` span: the event may still happen under a span made with the
            // OpenTelemetry API (the server span), which is then the current context's.
            if event.is_contextual() {
                let mut description = Description::default();
                event.record(&mut description);
                opentelemetry::Context::current()
                    .span()
                    .set_status(Status::error(description.text()));
            }
            return;
        };
        let Some(dispatch) = self.dispatch.get().and_then(WeakDispatch::upgrade) else {
            return;
        };
        let id = span.id();
        drop(span);
        if let Some(cx) = tracing_opentelemetry::get_otel_context(&id, &dispatch) {
            let mut description = Description::default();
            event.record(&mut description);
            cx.span().set_status(Status::error(description.text()));
        }
    }
}

/// `message: error` from an event's fields.
#[derive(Default)]
struct Description {
    message: String,
    error: String,
}

impl Description {
    fn text(self) -> String {
        match (self.message.is_empty(), self.error.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.error,
            (false, false) => format!("{}: {}", self.message, self.error),
        }
    }
}

impl Visit for Description {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "error" => self.error = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}
