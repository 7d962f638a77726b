//! W3C TraceContext + Baggage across HTTP headers, through the global propagator that
//! [`crate::init`] installs.

use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::global;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};

/// The parent context carried by `traceparent`/`tracestate`/`baggage`; an empty context
/// (so the next span starts a new trace) when there is none.
pub fn extract(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Writes `cx` (its span as `traceparent`/`tracestate`, its baggage as `baggage`) into
/// `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers));
    });
}

/// Same as [`inject`] with the current context. tracing-opentelemetry activates a span's
/// OpenTelemetry context whenever the `tracing` span is entered, so inside an instrumented
/// future this is the current span's context.
pub fn inject_current(headers: &mut http::HeaderMap) {
    inject(&Context::current(), headers);
}

/// One baggage entry of the current context (e.g. `customer.tier`), if present.
pub fn current_baggage(key: &str) -> Option<String> {
    Context::current().baggage().get(key).map(|v| v.to_string())
}

/// Runs `make_span` with `entries` added to the current baggage, so the `tracing` span it
/// creates (and everything under it, and every request the traced client sends from it)
/// carries that baggage. Baggage must be in place when the span is created: a started
/// span's context cannot change.
///
/// ```no_run
/// let span = telemetry::propagation::with_baggage(
///     [opentelemetry::KeyValue::new("customer.tier", "gold")],
///     || tracing::info_span!("order_service.process_order"),
/// );
/// ```
pub fn with_baggage<T>(
    entries: impl IntoIterator<Item = opentelemetry::KeyValue>,
    make_span: impl FnOnce() -> T,
) -> T {
    let _attached = Context::current_with_baggage(entries).attach();
    make_span()
}
