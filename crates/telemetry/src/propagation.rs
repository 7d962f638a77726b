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
