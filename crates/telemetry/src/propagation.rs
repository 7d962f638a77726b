//! W3C TraceContext + Baggage across HTTP headers, through the global propagator that
//! [`crate::init`] installs.

use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt as _};
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

/// Baggage entries that server spans record as attributes of the same name, so a trace
/// shows what the first caller put in the `baggage` header at every hop. A fixed list:
/// baggage comes from outside, and copying every entry would let any caller write any
/// attribute.
pub const SPAN_BAGGAGE_KEYS: [&str; 2] = ["customer.tier", "session.id"];

/// The [`SPAN_BAGGAGE_KEYS`] entries of `cx`'s baggage, as span attributes.
pub fn baggage_attributes(cx: &Context) -> Vec<opentelemetry::KeyValue> {
    let baggage = cx.baggage();
    SPAN_BAGGAGE_KEYS
        .iter()
        .filter_map(|key| {
            baggage
                .get(key)
                .map(|value| opentelemetry::KeyValue::new(*key, value.clone()))
        })
        .collect()
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
/// The entries are merged into what the caller sent (an entry of the same key is
/// replaced): `Context::current_with_baggage` alone would drop every entry the caller put
/// in the `baggage` header, and the next hop would never see them.
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
    let _attached =
        Context::map_current(|cx| cx.with_baggage(merged(cx.baggage(), entries))).attach();
    make_span()
}

fn merged(
    current: &Baggage,
    entries: impl IntoIterator<Item = opentelemetry::KeyValue>,
) -> Baggage {
    // Baggage is not Clone: copy the caller's entries, metadata included.
    let mut baggage = Baggage::new();
    for (key, (value, metadata)) in current {
        let _ = baggage.insert_with_metadata(key.clone(), value.clone(), metadata.clone());
    }
    for entry in entries {
        // Over the W3C limits (180 entries, 8192 bytes) the entry is refused and the
        // caller's baggage travels on unchanged.
        let _ = baggage.insert(entry.key, entry.value.as_str().into_owned());
    }
    baggage
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt as _;

    use super::*;

    #[test]
    fn added_entries_keep_the_callers_baggage() {
        let caller = Context::new().with_baggage([
            KeyValue::new("session.id", "s-1"),
            KeyValue::new("customer.tier", "silver"),
        ]);
        let _attached = caller.attach();
        let (session, tier) = with_baggage([KeyValue::new("customer.tier", "gold")], || {
            (
                current_baggage("session.id"),
                current_baggage("customer.tier"),
            )
        });
        assert_eq!(session.as_deref(), Some("s-1"));
        assert_eq!(tier.as_deref(), Some("gold"));
    }
}
