//! Splitting a batch by routing key: every span (or log record, or resource) goes to the
//! backend that owns its key, keeping its resource and scope envelopes.

use crate::pdata::Batch;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What decides the backend, as the Go loadbalancing exporter's `routing_key`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum RoutingKey {
    /// The trace id: all spans of a trace reach one backend (what tail sampling and
    /// trace-aware processing need). Logs without a trace id fall back to the service.
    /// Metrics have no trace id and are always routed by service.
    #[default]
    #[serde(rename = "traceID")]
    TraceId,
    /// `service.name` of the resource: all telemetry of a service reaches one backend
    /// (what span metrics computed per service need).
    #[serde(rename = "service")]
    Service,
}

/// The `service.name` of a resource, or "" when it has none.
pub fn service_name(resource: Option<&Resource>) -> &str {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// Splits `batch` into one batch per backend index; `pick` maps a routing key to an index.
/// Backends without data are absent from the result.
pub fn split(batch: Batch, key: RoutingKey, pick: impl Fn(&[u8]) -> usize) -> Vec<(usize, Batch)> {
    match (batch, key) {
        (Batch::Traces(rs), RoutingKey::TraceId) => by_item(
            rs,
            |r| &mut r.scope_spans,
            |s| &mut s.spans,
            |_, span| pick(&span.trace_id),
        )
        .into_iter()
        .map(|(i, v)| (i, Batch::Traces(v)))
        .collect(),
        (Batch::Logs(rl), RoutingKey::TraceId) => by_item(
            rl,
            |r| &mut r.scope_logs,
            |s| &mut s.log_records,
            |r, log| {
                if log.trace_id.iter().any(|b| *b != 0) {
                    pick(&log.trace_id)
                } else {
                    pick(service_name(r.resource.as_ref()).as_bytes())
                }
            },
        )
        .into_iter()
        .map(|(i, v)| (i, Batch::Logs(v)))
        .collect(),
        (Batch::Traces(rs), RoutingKey::Service) => {
            by_resource(rs, |r| pick(service_name(r.resource.as_ref()).as_bytes()))
                .into_iter()
                .map(|(i, v)| (i, Batch::Traces(v)))
                .collect()
        }
        (Batch::Logs(rl), RoutingKey::Service) => {
            by_resource(rl, |r| pick(service_name(r.resource.as_ref()).as_bytes()))
                .into_iter()
                .map(|(i, v)| (i, Batch::Logs(v)))
                .collect()
        }
        (Batch::Metrics(rm), _) => {
            by_resource(rm, |r| pick(service_name(r.resource.as_ref()).as_bytes()))
                .into_iter()
                .map(|(i, v)| (i, Batch::Metrics(v)))
                .collect()
        }
    }
}

/// Whole resources to one backend each.
fn by_resource<R>(resources: Vec<R>, backend_of: impl Fn(&R) -> usize) -> BTreeMap<usize, Vec<R>> {
    let mut out: BTreeMap<usize, Vec<R>> = BTreeMap::new();
    for r in resources {
        out.entry(backend_of(&r)).or_default().push(r);
    }
    out
}

/// Leaf items (spans, log records) to one backend each, each part carrying copies of its
/// resource and scope envelopes. A resource whose items all go to one backend is moved,
/// not copied.
fn by_item<R: Clone, S: Clone, T>(
    resources: Vec<R>,
    scopes_of: fn(&mut R) -> &mut Vec<S>,
    items_of: fn(&mut S) -> &mut Vec<T>,
    backend_of: impl Fn(&R, &T) -> usize,
) -> BTreeMap<usize, Vec<R>> {
    let mut out: BTreeMap<usize, Vec<R>> = BTreeMap::new();
    for mut resource in resources {
        let scopes = std::mem::take(scopes_of(&mut resource));
        // `resource` is now the envelope without scopes.
        let mut parts: BTreeMap<usize, R> = BTreeMap::new();
        for mut scope in scopes {
            let items = std::mem::take(items_of(&mut scope));
            let mut scope_parts: BTreeMap<usize, S> = BTreeMap::new();
            for item in items {
                let b = backend_of(&resource, &item);
                items_of(scope_parts.entry(b).or_insert_with(|| scope.clone())).push(item);
            }
            for (b, s) in scope_parts {
                scopes_of(parts.entry(b).or_insert_with(|| resource.clone())).push(s);
            }
        }
        for (b, r) in parts {
            out.entry(b).or_default().push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(service.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            ..Default::default()
        }
    }

    /// Backend = first byte of the key modulo 2, so tests can say where things go.
    fn parity(key: &[u8]) -> usize {
        key.first().map_or(0, |b| usize::from(*b % 2))
    }

    #[test]
    fn spans_of_one_batch_split_by_trace_id_keep_their_envelopes() {
        let batch = Batch::Traces(vec![ResourceSpans {
            resource: resource("order-service"),
            scope_spans: vec![ScopeSpans {
                schema_url: "s".into(),
                spans: vec![span(1, 1), span(2, 2), span(1, 3), span(4, 4)],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let parts = split(batch, RoutingKey::TraceId, parity);
        assert_eq!(parts.len(), 2);
        for (b, part) in parts {
            let Batch::Traces(rs) = part else { panic!() };
            assert_eq!(rs.len(), 1);
            assert_eq!(service_name(rs[0].resource.as_ref()), "order-service");
            assert_eq!(rs[0].scope_spans[0].schema_url, "s");
            let traces: Vec<u8> = rs[0].scope_spans[0]
                .spans
                .iter()
                .map(|s| s.trace_id[0])
                .collect();
            if b == 1 {
                assert_eq!(traces, vec![1, 1]);
            } else {
                assert_eq!(traces, vec![2, 4]);
            }
        }
    }

    #[test]
    fn service_routing_keeps_resources_whole() {
        let rs = |svc: &str| ResourceSpans {
            resource: resource(svc),
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, 1), span(2, 2)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let batch = Batch::Traces(vec![rs("a"), rs("b"), rs("c")]);
        // 'a' = 97 odd, 'b' = 98 even, 'c' = 99 odd
        let parts = split(batch, RoutingKey::Service, parity);
        let counts: Vec<(usize, usize)> = parts.iter().map(|(b, p)| (*b, p.item_count())).collect();
        assert_eq!(counts, vec![(0, 2), (1, 4)]);
    }

    #[test]
    fn logs_without_trace_id_follow_their_service() {
        let batch = Batch::Logs(vec![ResourceLogs {
            resource: resource("b"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        trace_id: vec![3; 16],
                        ..Default::default()
                    },
                    LogRecord::default(),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let parts = split(batch, RoutingKey::TraceId, parity);
        let counts: Vec<(usize, usize)> = parts.iter().map(|(b, p)| (*b, p.item_count())).collect();
        assert_eq!(counts, vec![(0, 1), (1, 1)]);
    }
}
