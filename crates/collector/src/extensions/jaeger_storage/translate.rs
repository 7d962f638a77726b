//! OTLP → Jaeger, as Jaeger's own OTLP translator does it: attributes become typed tags,
//! the resource becomes the process (service.name its serviceName, the other attributes its
//! tags), kind and status become `span.kind`, `otel.status_code`, `otel.status_description`
//! and `error=true`, events become logs with an `event` field, the parent becomes a
//! CHILD_OF reference and links FOLLOWS_FROM ones, times become microseconds.
//!
//! Log records that carry a trace and span id become logs of that span too (Jaeger has no
//! log records): the body as the `event` field, `level` from the severity, then the record's
//! attributes, so a span shows every log line written while it was current.

use super::model::{KeyValue, Log, Process, Span, SpanId, SpanKind, TraceId, Value};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as OtlpKeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, status::StatusCode};
use std::sync::Arc;

/// The service name Jaeger gives a resource without `service.name`.
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// Translates every span of the batch. Spans with an invalid trace or span id (not 16/8
/// bytes) are skipped, as Jaeger cannot address them; the count of those is returned.
pub fn spans_from_otlp(resources: &[ResourceSpans]) -> (Vec<Span>, usize) {
    let mut out = Vec::new();
    let mut invalid = 0;
    for rs in resources {
        let process = Arc::new(process_from_resource(
            rs.resource.as_ref().map(|r| r.attributes.as_slice()),
        ));
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref();
            for s in &ss.spans {
                let (Some(trace_id), Some(span_id)) = (
                    TraceId::from_slice(&s.trace_id),
                    SpanId::from_slice(&s.span_id),
                ) else {
                    invalid += 1;
                    continue;
                };
                let parent_span_id =
                    SpanId::from_slice(&s.parent_span_id).filter(|p| p.0 != [0; 8]);
                let kind = SpanKind::from_otlp(s.kind);
                let mut tags = tags_from_attributes(&s.attributes);
                if let Some(sc) = scope {
                    if !sc.name.is_empty() {
                        tags.push(KeyValue::string("otel.scope.name", &sc.name));
                    }
                    if !sc.version.is_empty() {
                        tags.push(KeyValue::string("otel.scope.version", &sc.version));
                    }
                }
                if kind != SpanKind::Unspecified {
                    tags.push(KeyValue::string("span.kind", kind.as_str()));
                }
                if let Some(st) = &s.status {
                    match StatusCode::try_from(st.code) {
                        Ok(StatusCode::Error) => {
                            tags.push(KeyValue::string("otel.status_code", "ERROR"));
                            tags.push(KeyValue::new("error", Value::Bool(true)));
                        }
                        Ok(StatusCode::Ok) => {
                            tags.push(KeyValue::string("otel.status_code", "OK"));
                        }
                        _ => {}
                    }
                    if !st.message.is_empty() {
                        tags.push(KeyValue::string("otel.status_description", &st.message));
                    }
                }
                if !s.trace_state.is_empty() {
                    tags.push(KeyValue::string("w3c.tracestate", &s.trace_state));
                }
                if s.dropped_attributes_count > 0 {
                    tags.push(KeyValue::new(
                        "otel.dropped_attributes_count",
                        Value::Int64(i64::from(s.dropped_attributes_count)),
                    ));
                }
                if s.dropped_events_count > 0 {
                    tags.push(KeyValue::new(
                        "otel.dropped_events_count",
                        Value::Int64(i64::from(s.dropped_events_count)),
                    ));
                }
                if s.dropped_links_count > 0 {
                    tags.push(KeyValue::new(
                        "otel.dropped_links_count",
                        Value::Int64(i64::from(s.dropped_links_count)),
                    ));
                }
                let logs = s
                    .events
                    .iter()
                    .map(|e| {
                        let mut fields = Vec::with_capacity(e.attributes.len() + 1);
                        if !e.name.is_empty() && !e.attributes.iter().any(|a| a.key == "event") {
                            fields.push(KeyValue::string("event", &e.name));
                        }
                        fields.extend(tags_from_attributes(&e.attributes));
                        Log {
                            timestamp: e.time_unix_nano / 1000,
                            fields,
                        }
                    })
                    .collect();
                let links = s
                    .links
                    .iter()
                    .filter_map(|l| {
                        Some((
                            TraceId::from_slice(&l.trace_id)?,
                            SpanId::from_slice(&l.span_id)?,
                        ))
                    })
                    .collect();
                out.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    operation_name: s.name.clone(),
                    kind,
                    start_time: s.start_time_unix_nano / 1000,
                    duration: s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) / 1000,
                    tags,
                    logs,
                    links,
                    process: process.clone(),
                });
            }
        }
    }
    (out, invalid)
}

/// A log record, ready to be shown on its span (when it has one) and searched.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanLog {
    pub service: String,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    /// `INFO`, `ERROR`, ... (from the severity text, else its number); may be empty.
    pub level: String,
    /// As shown on the span: the body as `event`, `level`, then the attributes.
    pub log: Log,
}

impl SpanLog {
    /// The record's body.
    pub fn message(&self) -> &str {
        match self.log.fields.first() {
            Some(KeyValue {
                value: Value::String(s),
                ..
            }) => s,
            _ => "",
        }
    }
}

/// Every log record of the batch; those with a valid trace and span id can be shown on
/// their span.
pub fn logs_from_otlp(resources: &[ResourceLogs]) -> Vec<SpanLog> {
    let mut out = Vec::new();
    for rl in resources {
        let service = process_from_resource(rl.resource.as_ref().map(|r| r.attributes.as_slice()))
            .service_name;
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let ids = TraceId::from_slice(&r.trace_id)
                    .filter(|t| t.0 != [0; 16])
                    .zip(SpanId::from_slice(&r.span_id).filter(|s| s.0 != [0; 8]));
                let mut fields = Vec::with_capacity(r.attributes.len() + 2);
                let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => match value_from_any(r.body.as_ref()) {
                        Value::String(s) if other.is_some() => s,
                        v => format!("{v:?}"),
                    },
                };
                fields.push(KeyValue::string("event", body));
                let level = if r.severity_text.is_empty() {
                    severity_name(r.severity_number).to_owned()
                } else {
                    r.severity_text.clone()
                };
                if !level.is_empty() {
                    fields.push(KeyValue::string("level", level.clone()));
                }
                fields.extend(tags_from_attributes(&r.attributes));
                let time = if r.time_unix_nano != 0 {
                    r.time_unix_nano
                } else {
                    r.observed_time_unix_nano
                };
                out.push(SpanLog {
                    service: service.clone(),
                    trace_id: ids.map(|(t, _)| t),
                    span_id: ids.map(|(_, s)| s),
                    level,
                    log: Log {
                        timestamp: time / 1000,
                        fields,
                    },
                });
            }
        }
    }
    out
}

/// The short name of an OTLP severity number (1–24), as the log data model ranges them.
fn severity_name(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

fn process_from_resource(attrs: Option<&[OtlpKeyValue]>) -> Process {
    let attrs = attrs.unwrap_or_default();
    let service_name = attrs
        .iter()
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| NO_SERVICE_NAME.to_string());
    let tags = attrs
        .iter()
        .filter(|a| a.key != "service.name")
        .map(tag_from_attribute)
        .collect();
    Process { service_name, tags }
}

fn tags_from_attributes(attrs: &[OtlpKeyValue]) -> Vec<KeyValue> {
    attrs.iter().map(tag_from_attribute).collect()
}

fn tag_from_attribute(a: &OtlpKeyValue) -> KeyValue {
    KeyValue::new(a.key.clone(), value_from_any(a.value.as_ref()))
}

fn value_from_any(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Int64(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Float64(*d),
        Some(any_value::Value::BytesValue(b)) => Value::Binary(b.clone()),
        // Jaeger has no list or map type: its translator writes them as JSON strings.
        Some(other @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            Value::String(to_json(Some(other)).to_string())
        }
        // A string-table index only means something inside OTLP profiles.
        Some(any_value::Value::StringValueStrindex(_)) | None => Value::String(String::new()),
    }
}

fn to_json(v: Option<&any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => J::from(*d),
        Some(any_value::Value::BytesValue(b)) => J::String(hex::encode(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|x| to_json(x.value.as_ref())).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|x| {
                    (
                        x.key.clone(),
                        to_json(x.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
        Some(any_value::Value::StringValueStrindex(_)) | None => J::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span as OtlpSpan, Status, span};

    fn kv(key: &str, v: any_value::Value) -> OtlpKeyValue {
        OtlpKeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn translates_like_jaegers_otlp_translator() {
        let rs = ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue("shop".into())),
                    kv("host.name", any_value::Value::StringValue("h1".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                spans: vec![OtlpSpan {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    parent_span_id: vec![3; 8],
                    name: "GET /x".into(),
                    kind: 2,
                    start_time_unix_nano: 1_000_000_000,
                    end_time_unix_nano: 1_250_000_000,
                    attributes: vec![
                        kv("http.response.status_code", any_value::Value::IntValue(500)),
                        kv(
                            "list",
                            any_value::Value::ArrayValue(ArrayValue {
                                values: vec![AnyValue {
                                    value: Some(any_value::Value::IntValue(1)),
                                }],
                            }),
                        ),
                    ],
                    events: vec![span::Event {
                        name: "exception".into(),
                        time_unix_nano: 1_100_000_000,
                        attributes: vec![kv(
                            "exception.message",
                            any_value::Value::StringValue("boom".into()),
                        )],
                        ..Default::default()
                    }],
                    links: vec![span::Link {
                        trace_id: vec![9; 16],
                        span_id: vec![8; 8],
                        ..Default::default()
                    }],
                    status: Some(Status {
                        code: 2,
                        message: "it broke".into(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let (spans, invalid) = spans_from_otlp(&[rs]);
        assert_eq!(invalid, 0);
        let s = &spans[0];
        assert_eq!(s.process.service_name, "shop");
        assert_eq!(s.process.tags, vec![KeyValue::string("host.name", "h1")]);
        assert_eq!(s.start_time, 1_000_000);
        assert_eq!(s.duration, 250_000);
        let json = serde_json::to_value(&s.tags).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"key": "http.response.status_code", "type": "int64", "value": 500},
                {"key": "list", "type": "string", "value": "[1]"},
                {"key": "otel.scope.name", "type": "string", "value": "lib"},
                {"key": "otel.scope.version", "type": "string", "value": "1.0"},
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "error", "type": "bool", "value": true},
                {"key": "otel.status_description", "type": "string", "value": "it broke"},
            ])
        );
        assert_eq!(s.logs[0].timestamp, 1_100_000);
        assert_eq!(s.logs[0].fields[0], KeyValue::string("event", "exception"));
        assert_eq!(s.links, vec![(TraceId([9; 16]), SpanId([8; 8]))]);
        assert!(s.is_error());
        assert!(s.has_tag("http.response.status_code", "500"));
        assert!(s.has_tag("host.name", "h1"));
        assert!(s.has_tag("exception.message", "boom"));
    }

    #[test]
    fn spans_with_bad_ids_are_counted_not_stored() {
        let rs = ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![OtlpSpan {
                    trace_id: vec![1; 3],
                    span_id: vec![2; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let (spans, invalid) = spans_from_otlp(&[rs]);
        assert!(spans.is_empty());
        assert_eq!(invalid, 1);
    }
}
