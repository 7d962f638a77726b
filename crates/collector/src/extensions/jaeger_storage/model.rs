//! The span model the store keeps, and its rendering as Jaeger's JSON (the `model/json`
//! shapes the Jaeger UI and Grafana's Jaeger data source read).
//!
//! Spans are kept already translated to Jaeger's vocabulary (typed tags, logs, process) so a
//! query only filters and serialises; the translation from OTLP lives in `translate`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A 128-bit trace id. Rendered as 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit span id. Rendered as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// Parses Jaeger's textual trace id: 1 to 32 hex digits (shorter ids are the low bits,
    /// as Jaeger writes 64-bit ids).
    pub fn parse(s: &str) -> Option<TraceId> {
        if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let padded = format!("{s:0>32}");
        let mut out = [0u8; 16];
        hex::decode_to_slice(padded, &mut out).ok()?;
        Some(TraceId(out))
    }

    pub fn from_slice(b: &[u8]) -> Option<TraceId> {
        Some(TraceId(b.try_into().ok()?))
    }
}

impl SpanId {
    pub fn from_slice(b: &[u8]) -> Option<SpanId> {
        Some(SpanId(b.try_into().ok()?))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The OTLP span kind, written as Jaeger's `span.kind` tag values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn from_otlp(k: i32) -> SpanKind {
        match k {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The `span.kind` tag value; empty for an unspecified kind (which has no tag).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses the `spanKind` query parameter (Jaeger's lowercase names; empty means any).
    pub fn parse(s: &str) -> Option<SpanKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            "unspecified" => SpanKind::Unspecified,
            _ => return None,
        })
    }
}

/// A typed tag value, with Jaeger's five types.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Binary(Vec<u8>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Bool(_) => "bool",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Binary(_) => "binary",
        }
    }

    /// Whether a search value (always a string in the API) names this value, comparing as
    /// Jaeger does: by the value's string form.
    pub fn matches(&self, wanted: &str) -> bool {
        match self {
            Value::String(s) => s == wanted,
            Value::Bool(b) => wanted.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            Value::Int64(i) => wanted.trim().parse::<i64>() == Ok(*i),
            Value::Float64(f) => wanted.trim().parse::<f64>() == Ok(*f),
            Value::Binary(b) => wanted.eq_ignore_ascii_case(&hex::encode(b)),
        }
    }

    /// The string a search would use for this value (what `matches` accepts).
    pub fn search_string(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Int64(i) => i.to_string(),
            Value::Float64(f) => f.to_string(),
            Value::Binary(b) => hex::encode(b),
        }
    }
}

/// One tag (or log field): `{"key": .., "type": .., "value": ..}` in Jaeger's JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
        }
    }
    pub fn string(key: impl Into<String>, v: impl Into<String>) -> KeyValue {
        KeyValue::new(key, Value::String(v.into()))
    }
}

impl Serialize for KeyValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KeyValue", 3)?;
        st.serialize_field("key", &self.key)?;
        st.serialize_field("type", self.value.type_name())?;
        match &self.value {
            Value::String(v) => st.serialize_field("value", v)?,
            Value::Bool(v) => st.serialize_field("value", v)?,
            Value::Int64(v) => st.serialize_field("value", v)?,
            // JSON has no NaN or infinity; Jaeger's Go encoder would fail, we write null.
            Value::Float64(v) if v.is_finite() => st.serialize_field("value", v)?,
            Value::Float64(_) => st.serialize_field("value", &())?,
            // Go's encoding/json writes []byte as standard base64.
            Value::Binary(v) => st.serialize_field("value", &STANDARD.encode(v))?,
        }
        st.end()
    }
}

/// A span event: Jaeger's log, `{"timestamp": µs, "fields": [...]}`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Log {
    pub timestamp: u64,
    pub fields: Vec<KeyValue>,
}

/// The resource a span came from: Jaeger's process.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

/// A span as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub operation_name: String,
    pub kind: SpanKind,
    /// Microseconds since the Unix epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    /// Attributes plus the tags Jaeger's translator derives (span.kind, otel.status_code, error, ...).
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    /// Links: FOLLOWS_FROM references.
    pub links: Vec<(TraceId, SpanId)>,
    /// Shared by every span of one resource in one batch.
    pub process: Arc<Process>,
}

impl Span {
    /// Whether the span has a tag, process tag or log field `key` whose value reads `value`
    /// (where Jaeger's memory store looks).
    pub fn has_tag(&self, key: &str, value: &str) -> bool {
        let hit = |kvs: &[KeyValue]| {
            kvs.iter()
                .any(|kv| kv.key == key && kv.value.matches(value))
        };
        hit(&self.tags) || hit(&self.process.tags) || self.logs.iter().any(|l| hit(&l.fields))
    }

    pub fn is_error(&self) -> bool {
        self.tags
            .iter()
            .any(|kv| kv.key == "error" && kv.value.matches("true"))
    }
}

/// A trace as returned by the store: its spans, ordered by start time.
pub type TraceSpans = Vec<Arc<Span>>;

/// Renders a trace as Jaeger's JSON trace: spans refer to processes `p1`, `p2`, ... listed once
/// in `processes` (equal processes share an id).
pub struct JsonTrace<'a> {
    pub spans: &'a [Arc<Span>],
}

struct JsonSpan<'a> {
    span: &'a Span,
    process_id: &'a str,
}

struct References<'a>(&'a Span);

impl Serialize for References<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Reference {
            #[serde(rename = "refType")]
            ref_type: &'static str,
            #[serde(rename = "traceID")]
            trace_id: String,
            #[serde(rename = "spanID")]
            span_id: String,
        }
        use serde::ser::SerializeSeq;
        let sp = self.0;
        let mut seq = s.serialize_seq(None)?;
        if let Some(p) = sp.parent_span_id {
            seq.serialize_element(&Reference {
                ref_type: "CHILD_OF",
                trace_id: sp.trace_id.to_string(),
                span_id: p.to_string(),
            })?;
        }
        for (t, l) in &sp.links {
            seq.serialize_element(&Reference {
                ref_type: "FOLLOWS_FROM",
                trace_id: t.to_string(),
                span_id: l.to_string(),
            })?;
        }
        seq.end()
    }
}

impl Serialize for JsonSpan<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sp = self.span;
        let mut st = s.serialize_struct("Span", 11)?;
        st.serialize_field("traceID", &sp.trace_id.to_string())?;
        st.serialize_field("spanID", &sp.span_id.to_string())?;
        st.serialize_field("operationName", &sp.operation_name)?;
        st.serialize_field("references", &References(sp))?;
        st.serialize_field("startTime", &sp.start_time)?;
        st.serialize_field("duration", &sp.duration)?;
        st.serialize_field("tags", &sp.tags)?;
        st.serialize_field("logs", &sp.logs)?;
        st.serialize_field("processID", self.process_id)?;
        st.serialize_field("warnings", &())?;
        st.end()
    }
}

impl Serialize for JsonTrace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Equal processes (same resource sent in several batches) share one id.
        let mut processes: Vec<&Arc<Process>> = Vec::new();
        let mut ids: Vec<String> = Vec::with_capacity(self.spans.len());
        for sp in self.spans {
            let i = match processes
                .iter()
                .position(|p| Arc::ptr_eq(p, &sp.process) || ***p == *sp.process)
            {
                Some(i) => i,
                None => {
                    processes.push(&sp.process);
                    processes.len() - 1
                }
            };
            ids.push(format!("p{}", i + 1));
        }
        let spans: Vec<JsonSpan> = self
            .spans
            .iter()
            .zip(&ids)
            .map(|(span, id)| JsonSpan {
                span,
                process_id: id,
            })
            .collect();
        let by_id: BTreeMap<String, &Process> = processes
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("p{}", i + 1), &***p))
            .collect();
        let mut st = s.serialize_struct("Trace", 4)?;
        let trace_id = self
            .spans
            .first()
            .map(|s| s.trace_id.to_string())
            .unwrap_or_default();
        st.serialize_field("traceID", &trace_id)?;
        st.serialize_field("spans", &spans)?;
        st.serialize_field("processes", &ProcessMap(&by_id))?;
        st.serialize_field("warnings", &())?;
        st.end()
    }
}

/// `processes` in p1, p2, ..., p10 order (numeric, not lexicographic).
struct ProcessMap<'a>(&'a BTreeMap<String, &'a Process>);

impl Serialize for ProcessMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort_by_key(|(k, _)| k[1..].parse::<usize>().unwrap_or(usize::MAX));
        let mut m = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One edge of the service dependency graph: Jaeger's DependencyLink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    #[serde(rename = "callCount")]
    pub call_count: u64,
}

/// An operation as `/api/operations` lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Operation {
    pub name: String,
    #[serde(rename = "spanKind")]
    pub span_kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_parse_short_and_long_forms() {
        let t = TraceId::parse("5b8efff798038103d269b633813fc60c").unwrap();
        assert_eq!(t.to_string(), "5b8efff798038103d269b633813fc60c");
        let short = TraceId::parse("abc").unwrap();
        assert_eq!(short.to_string(), "00000000000000000000000000000abc");
        assert!(TraceId::parse("xyz").is_none());
        assert!(TraceId::parse("").is_none());
        assert!(TraceId::parse(&"a".repeat(33)).is_none());
    }

    #[test]
    fn tags_serialise_with_jaeger_types() {
        let kvs = vec![
            KeyValue::string("s", "x"),
            KeyValue::new("b", Value::Bool(true)),
            KeyValue::new("i", Value::Int64(-3)),
            KeyValue::new("f", Value::Float64(1.5)),
            KeyValue::new("bin", Value::Binary(b"hello".to_vec())),
        ];
        let json = serde_json::to_value(&kvs).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"key": "s", "type": "string", "value": "x"},
                {"key": "b", "type": "bool", "value": true},
                {"key": "i", "type": "int64", "value": -3},
                {"key": "f", "type": "float64", "value": 1.5},
                {"key": "bin", "type": "binary", "value": "aGVsbG8="},
            ])
        );
    }

    #[test]
    fn values_match_their_string_forms() {
        assert!(Value::Bool(true).matches("true"));
        assert!(!Value::Bool(true).matches("false"));
        assert!(Value::Int64(500).matches("500"));
        assert!(!Value::String("500".into()).matches("50"));
        assert!(Value::Float64(0.25).matches("0.25"));
    }
}
