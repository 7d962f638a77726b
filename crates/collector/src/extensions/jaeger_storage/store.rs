//! The `memory` backend: recent traces held in memory, bounded, indexed for Jaeger's
//! searches, safe to write and query at once.
//!
//! Bounds: at most `max_traces` traces and `max_spans` spans; past either the oldest traces
//! (by first arrival) are evicted whole. Spans of one trace arriving in several batches merge
//! into that trace; a span id seen twice in a trace is kept once (retried exports).
//!
//! Indexes, kept in step with eviction: traces by service and by (service, operation, kind),
//! each ordered by trace start time, so a search walks only the candidate traces of its
//! service newest first and stops at its limit; per trace, the largest span duration (rejects
//! a `minDuration` search without looking at spans) and a hash set of its `key=value` tags
//! (rejects a tag search the same way). A candidate that passes is confirmed span by span:
//! as in Jaeger's memory store, one span must match service, operation, durations and every
//! tag. The time window applies to the trace's start.
//!
//! Span links across traces are indexed both ways: each trace knows the traces its spans
//! link to, and the store knows, for every trace, the traces whose spans link *into* it
//! ("linked from"), kept in step with eviction, so an order's trace finds the fulfilment
//! that a queue started from it without a scan.
//!
//! Log records of spans (`write_logs`) are kept beside the traces, at most `max_logs` of
//! them (the oldest go first), and joined to their spans when a trace is read, so a log line
//! that arrives before its span (a span is exported when it ends, its logs while it runs)
//! still shows on it.
//!
//! Locking: one `RwLock` for traces, one for logs. Translation and grouping happen before the write lock is taken;
//! queries hold the read lock only to pick traces and clone `Arc`s of their spans, and
//! sort and serialise after releasing it.

use super::model::{DependencyLink, Log, Operation, Span, SpanId, SpanKind, TraceId, TraceSpans};
use super::persist::Persistence;
use super::translate::SpanLog;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

/// Whether `needle` occurs in `haystack`, ASCII letters compared without case (no copy of
/// either: the log search runs this over every field of every record it holds).
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// What the monitor needs of one span.
#[derive(Clone, Debug, PartialEq)]
pub struct RedSample {
    pub service: String,
    pub operation: String,
    /// Start, µs since the epoch.
    pub start: u64,
    /// µs.
    pub duration: u64,
    pub error: bool,
}

/// Log records a store keeps unless told otherwise.
pub const DEFAULT_MAX_LOGS: usize = 100_000;

/// Bounds of a memory store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_traces: usize,
    pub max_spans: usize,
}

/// What a trace search asks for (Jaeger's TraceQueryParameters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    pub service: String,
    pub operation: Option<String>,
    pub span_kind: Option<SpanKind>,
    /// Every pair must be found on one span (its tags, process tags or log fields).
    pub tags: Vec<(String, String)>,
    /// Trace start window, microseconds since the epoch (inclusive).
    pub start_min: u64,
    pub start_max: u64,
    /// Span duration bounds, microseconds.
    pub duration_min: Option<u64>,
    pub duration_max: Option<u64>,
    /// Most traces returned.
    pub limit: usize,
}

type Seq = u64;
/// (trace start in µs, arrival sequence): index entries sort by time, ties by arrival.
type IndexKey = (u64, Seq);

struct StoredTrace {
    spans: Vec<Arc<Span>>,
    span_ids: HashSet<SpanId>,
    start: u64,
    max_duration: u64,
    services: BTreeSet<String>,
    operations: BTreeSet<(String, String, SpanKind)>,
    tag_hashes: HashSet<u64>,
    /// Other traces its spans link to.
    links_out: BTreeSet<TraceId>,
}

#[derive(Default)]
struct Inner {
    next_seq: Seq,
    /// Arrival order: the first entry is the oldest trace.
    traces: BTreeMap<Seq, StoredTrace>,
    by_id: HashMap<TraceId, Seq>,
    span_count: usize,
    by_service: HashMap<String, BTreeSet<IndexKey>>,
    by_operation: HashMap<String, BTreeMap<(String, SpanKind), BTreeSet<IndexKey>>>,
    /// For a trace, the traces held whose spans link into it.
    linked_from: HashMap<TraceId, BTreeSet<TraceId>>,
}

/// Log records by the span they belong to, oldest first in `order`; and every record,
/// with or without a span, newest last in `recent`, for the log search.
#[derive(Default)]
struct SpanLogs {
    by_span: HashMap<(TraceId, SpanId), Vec<Log>>,
    /// One entry per record held, in arrival order: which span's vector to trim first.
    order: VecDeque<(TraceId, SpanId)>,
    recent: VecDeque<Arc<SpanLog>>,
}

/// A log search: every given condition must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogQuery {
    pub service: Option<String>,
    /// Found in the message or any string field, ignoring the case of ASCII letters.
    pub text: Option<String>,
    /// The level, ignoring case (`error`, `WARN`).
    pub level: Option<String>,
    /// Window, µs since the epoch (inclusive).
    pub start: u64,
    pub end: u64,
    pub limit: usize,
}

/// Jaeger's memory backend (and, with a [`Persistence`], the `sqlite` one).
pub struct MemoryStore {
    limits: Limits,
    max_logs: usize,
    inner: RwLock<Inner>,
    logs: RwLock<SpanLogs>,
    persistence: Option<Persistence>,
}

fn tag_hash(key: &str, value: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// The forms a searched value may have been stored under (a bool, number or the raw text).
fn value_forms(wanted: &str) -> Vec<String> {
    let mut v = vec![wanted.to_string()];
    let t = wanted.trim();
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        v.push(t.to_ascii_lowercase());
    } else if let Ok(i) = t.parse::<i64>() {
        v.push(i.to_string());
    } else if let Ok(f) = t.parse::<f64>() {
        v.push(f.to_string());
    }
    v
}

fn span_matches(s: &Span, q: &TraceQuery) -> bool {
    s.process.service_name == q.service
        && q.operation.as_ref().is_none_or(|o| *o == s.operation_name)
        && q.span_kind.is_none_or(|k| k == s.kind)
        && q.duration_min.is_none_or(|d| s.duration >= d)
        && q.duration_max.is_none_or(|d| s.duration <= d)
        && q.tags.iter().all(|(k, v)| s.has_tag(k, v))
}

impl StoredTrace {
    fn new() -> StoredTrace {
        StoredTrace {
            spans: Vec::new(),
            span_ids: HashSet::new(),
            start: u64::MAX,
            max_duration: 0,
            services: BTreeSet::new(),
            operations: BTreeSet::new(),
            tag_hashes: HashSet::new(),
            links_out: BTreeSet::new(),
        }
    }

    fn add(&mut self, s: Arc<Span>) -> bool {
        if !self.span_ids.insert(s.span_id) {
            return false;
        }
        self.start = self.start.min(s.start_time);
        self.max_duration = self.max_duration.max(s.duration);
        if !self.services.contains(&s.process.service_name) {
            self.services.insert(s.process.service_name.clone());
        }
        self.operations.insert((
            s.process.service_name.clone(),
            s.operation_name.clone(),
            s.kind,
        ));
        let kvs = s
            .tags
            .iter()
            .chain(&s.process.tags)
            .chain(s.logs.iter().flat_map(|l| &l.fields));
        for kv in kvs {
            self.tag_hashes
                .insert(tag_hash(&kv.key, &kv.value.search_string()));
        }
        for (trace, _) in &s.links {
            if *trace != s.trace_id {
                self.links_out.insert(*trace);
            }
        }
        self.spans.push(s);
        true
    }

    fn may_match(&self, q: &TraceQuery) -> bool {
        q.duration_min.is_none_or(|d| self.max_duration >= d)
            && q.tags.iter().all(|(k, v)| {
                value_forms(v)
                    .iter()
                    .any(|f| self.tag_hashes.contains(&tag_hash(k, f)))
            })
    }
}

impl Inner {
    fn unindex(&mut self, seq: Seq) {
        let Some(t) = self.traces.get(&seq) else {
            return;
        };
        let key = (t.start, seq);
        for svc in &t.services {
            if let Some(set) = self.by_service.get_mut(svc) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_service.remove(svc);
                }
            }
        }
        for (svc, op, kind) in &t.operations {
            if let Some(ops) = self.by_operation.get_mut(svc) {
                let k = (op.clone(), *kind);
                if let Some(set) = ops.get_mut(&k) {
                    set.remove(&key);
                    if set.is_empty() {
                        ops.remove(&k);
                    }
                }
                if ops.is_empty() {
                    self.by_operation.remove(svc);
                }
            }
        }
    }

    fn index(&mut self, seq: Seq) {
        let Some(t) = self.traces.get(&seq) else {
            return;
        };
        let key = (t.start, seq);
        for svc in &t.services {
            self.by_service.entry(svc.clone()).or_default().insert(key);
        }
        for (svc, op, kind) in &t.operations {
            self.by_operation
                .entry(svc.clone())
                .or_default()
                .entry((op.clone(), *kind))
                .or_default()
                .insert(key);
        }
    }

    fn evict_oldest(&mut self) {
        let Some((&seq, _)) = self.traces.first_key_value() else {
            return;
        };
        self.unindex(seq);
        if let Some(t) = self.traces.remove(&seq) {
            self.span_count -= t.spans.len();
            if let Some(first) = t.spans.first() {
                let id = first.trace_id;
                self.by_id.remove(&id);
                for target in &t.links_out {
                    if let Some(sources) = self.linked_from.get_mut(target) {
                        sources.remove(&id);
                        if sources.is_empty() {
                            self.linked_from.remove(target);
                        }
                    }
                }
            }
        }
    }
}

impl MemoryStore {
    pub fn new(limits: Limits) -> MemoryStore {
        MemoryStore {
            limits: Limits {
                max_traces: limits.max_traces.max(1),
                max_spans: limits.max_spans.max(1),
            },
            max_logs: DEFAULT_MAX_LOGS,
            inner: RwLock::new(Inner::default()),
            logs: RwLock::new(SpanLogs::default()),
            persistence: None,
        }
    }

    /// The same store, keeping what it is written on disk too.
    pub fn with_persistence(mut self, persistence: Persistence) -> MemoryStore {
        self.persistence = Some(persistence);
        self
    }

    /// The disk side, when the store has one.
    pub fn persistence(&self) -> Option<&Persistence> {
        self.persistence.as_ref()
    }

    /// The same store holding at most `max_logs` log records (at least one).
    pub fn with_max_logs(mut self, max_logs: usize) -> MemoryStore {
        self.max_logs = max_logs.max(1);
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn max_logs(&self) -> usize {
        self.max_logs
    }

    /// Keeps log records for their spans, evicting the oldest records beyond `max_logs`.
    pub fn write_logs(&self, records: Vec<SpanLog>) {
        if records.is_empty() {
            return;
        }
        let mut logs = self.logs.write().unwrap_or_else(|e| e.into_inner());
        for r in records {
            if let (Some(t), Some(s)) = (r.trace_id, r.span_id) {
                logs.by_span.entry((t, s)).or_default().push(r.log.clone());
                logs.order.push_back((t, s));
            }
            logs.recent.push_back(Arc::new(r));
        }
        while logs.recent.len() > self.max_logs {
            logs.recent.pop_front();
        }
        while logs.order.len() > self.max_logs {
            let Some(key) = logs.order.pop_front() else {
                break;
            };
            if let Some(held) = logs.by_span.get_mut(&key) {
                held.remove(0);
                if held.is_empty() {
                    logs.by_span.remove(&key);
                }
            }
        }
    }

    /// Log records held now (with or without a span).
    pub fn log_count(&self) -> usize {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .recent
            .len()
    }

    /// Log records matching the query, newest first, at most `limit` (default 100).
    pub fn find_logs(&self, q: &LogQuery) -> Vec<Arc<SpanLog>> {
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let text = q.text.as_deref();
        let logs = self.logs.read().unwrap_or_else(|e| e.into_inner());
        logs.recent
            .iter()
            .rev()
            .filter(|l| {
                l.log.timestamp >= q.start
                    && l.log.timestamp <= q.end
                    && q.service.as_ref().is_none_or(|s| *s == l.service)
                    && q.level
                        .as_ref()
                        .is_none_or(|v| v.eq_ignore_ascii_case(&l.level))
                    && text.as_ref().is_none_or(|t| {
                        l.log.fields.iter().any(|f| match &f.value {
                            super::model::Value::String(v) => contains_ignoring_case(v, t),
                            _ => false,
                        })
                    })
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// The spans with their log records joined to their own logs (span events), by time.
    fn with_logs(&self, spans: TraceSpans) -> TraceSpans {
        let logs = self.logs.read().unwrap_or_else(|e| e.into_inner());
        if logs.by_span.is_empty() {
            return spans;
        }
        spans
            .into_iter()
            .map(|s| match logs.by_span.get(&(s.trace_id, s.span_id)) {
                None => s,
                Some(records) => {
                    let mut span = Span::clone(&s);
                    span.logs.extend(records.iter().cloned());
                    span.logs.sort_by_key(|l| l.timestamp);
                    Arc::new(span)
                }
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the lab's traces, so a poisoned lock is used as is.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores spans, merging them into traces already held, then evicts the oldest traces
    /// beyond the limits.
    pub fn write(&self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        let mut groups: HashMap<TraceId, Vec<Arc<Span>>> = HashMap::new();
        for s in spans {
            groups.entry(s.trace_id).or_default().push(Arc::new(s));
        }
        let mut inner = self.write_lock();
        for (id, spans) in groups {
            let seq = match inner.by_id.get(&id) {
                Some(&seq) => {
                    inner.unindex(seq);
                    seq
                }
                None => {
                    let seq = inner.next_seq;
                    inner.next_seq += 1;
                    inner.by_id.insert(id, seq);
                    inner.traces.insert(seq, StoredTrace::new());
                    seq
                }
            };
            let t = inner.traces.get_mut(&seq).expect("trace just looked up");
            let added = spans.into_iter().filter(|s| t.add(s.clone())).count();
            let targets: Vec<TraceId> = t.links_out.iter().copied().collect();
            inner.span_count += added;
            for target in targets {
                inner.linked_from.entry(target).or_default().insert(id);
            }
            inner.index(seq);
        }
        while inner.traces.len() > 1
            && (inner.traces.len() > self.limits.max_traces
                || inner.span_count > self.limits.max_spans)
        {
            inner.evict_oldest();
        }
    }

    /// (traces, spans) held now.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.traces.len(), inner.span_count)
    }

    pub fn services(&self) -> Vec<String> {
        let mut v: Vec<String> = self.read().by_service.keys().cloned().collect();
        v.sort();
        v
    }

    /// Operations of a service, optionally of one span kind, sorted by name.
    pub fn operations(&self, service: &str, kind: Option<SpanKind>) -> Vec<Operation> {
        let inner = self.read();
        let Some(ops) = inner.by_operation.get(service) else {
            return Vec::new();
        };
        ops.keys()
            .filter(|(_, k)| kind.is_none_or(|want| want == *k))
            .map(|(name, k)| Operation {
                name: name.clone(),
                span_kind: k.as_str().to_string(),
            })
            .collect()
    }

    /// The traces held whose spans link into trace `id`, oldest first.
    pub fn linked_from(&self, id: TraceId) -> Vec<TraceId> {
        let inner = self.read();
        let mut sources: Vec<(Seq, TraceId)> = inner
            .linked_from
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|source| Some((*inner.by_id.get(source)?, *source)))
            .collect();
        sources.sort();
        sources.into_iter().map(|(_, id)| id).collect()
    }

    /// One trace, spans ordered by start time.
    pub fn get_trace(&self, id: TraceId) -> Option<TraceSpans> {
        let mut spans = {
            let inner = self.read();
            let seq = inner.by_id.get(&id)?;
            inner.traces.get(seq)?.spans.clone()
        };
        spans.sort_by_key(|s| s.start_time);
        Some(self.with_logs(spans))
    }

    /// Traces with a span matching the query, newest first, at most `limit`.
    pub fn find_traces(&self, q: &TraceQuery) -> Vec<TraceSpans> {
        let limit = if q.limit == 0 { 100 } else { q.limit };
        let lo = (q.start_min, 0);
        let hi = (q.start_max, Seq::MAX);
        if lo > hi {
            return Vec::new();
        }
        let mut found = Vec::new();
        {
            let inner = self.read();
            let Some(by_service) = inner.by_service.get(&q.service) else {
                return Vec::new();
            };
            // An operation narrows the candidates to its own index entries.
            let candidates: Vec<IndexKey> = match &q.operation {
                Some(op) => {
                    let mut keys: Vec<IndexKey> = inner
                        .by_operation
                        .get(&q.service)
                        .into_iter()
                        .flat_map(|ops| ops.iter())
                        .filter(|((name, kind), _)| {
                            name == op && q.span_kind.is_none_or(|k| k == *kind)
                        })
                        .flat_map(|(_, set)| set.range(lo..=hi).copied())
                        .collect();
                    keys.sort_unstable_by(|a, b| b.cmp(a));
                    keys.dedup();
                    keys
                }
                None => by_service.range(lo..=hi).rev().copied().collect(),
            };
            for (_, seq) in candidates {
                let Some(t) = inner.traces.get(&seq) else {
                    continue;
                };
                if t.may_match(q) && t.spans.iter().any(|s| span_matches(s, q)) {
                    found.push(t.spans.clone());
                    if found.len() >= limit {
                        break;
                    }
                }
            }
        }
        found
            .into_iter()
            .map(|mut spans| {
                spans.sort_by_key(|s| s.start_time);
                self.with_logs(spans)
            })
            .collect()
    }

    /// One sample per span of `services` (all services when empty) of one of `kinds`, that
    /// started in `[start, end]` µs, for the monitor's RED figures. Cloned out under the
    /// read lock; the caller aggregates without it.
    pub fn red_samples(
        &self,
        services: &[String],
        kinds: &[SpanKind],
        start: u64,
        end: u64,
    ) -> Vec<RedSample> {
        let inner = self.read();
        let mut out = Vec::new();
        for t in inner.traces.values() {
            // A trace that started after the window holds no span in it.
            if t.start > end {
                continue;
            }
            for s in &t.spans {
                if s.start_time < start
                    || s.start_time > end
                    || !kinds.contains(&s.kind)
                    || !(services.is_empty() || services.contains(&s.process.service_name))
                {
                    continue;
                }
                out.push(RedSample {
                    service: s.process.service_name.clone(),
                    operation: s.operation_name.clone(),
                    start: s.start_time,
                    duration: s.duration,
                    error: s.is_error(),
                });
            }
        }
        out
    }

    /// Parent → child service calls within traces that started in `[start, end]` (µs):
    /// a CHILD_OF edge between spans of two different services counts one call.
    pub fn dependencies(&self, start: u64, end: u64) -> Vec<DependencyLink> {
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        let inner = self.read();
        for t in inner.traces.values() {
            if t.start < start || t.start > end || t.services.len() < 2 {
                continue;
            }
            let service_of: HashMap<SpanId, &str> = t
                .spans
                .iter()
                .map(|s| (s.span_id, s.process.service_name.as_str()))
                .collect();
            for s in &t.spans {
                if let Some(parent) = s.parent_span_id.and_then(|p| service_of.get(&p))
                    && *parent != s.process.service_name
                {
                    *counts
                        .entry((parent.to_string(), s.process.service_name.clone()))
                        .or_default() += 1;
                }
            }
        }
        drop(inner);
        counts
            .into_iter()
            .map(|((parent, child), call_count)| DependencyLink {
                parent,
                child,
                call_count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::jaeger_storage::model::{KeyValue, Process, Value};

    fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, name: &str, start: u64) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            operation_name: name.into(),
            kind: SpanKind::Server,
            start_time: start,
            duration: 1000 * u64::from(id),
            tags: vec![KeyValue::new(
                "http.response.status_code",
                Value::Int64(200),
            )],
            logs: vec![],
            links: vec![],
            process: Arc::new(Process {
                service_name: service.into(),
                tags: vec![],
            }),
        }
    }

    fn store() -> MemoryStore {
        MemoryStore::new(Limits {
            max_traces: 10,
            max_spans: 1000,
        })
    }

    fn query(service: &str) -> TraceQuery {
        TraceQuery {
            service: service.into(),
            start_max: u64::MAX,
            ..Default::default()
        }
    }

    #[test]
    fn log_records_join_their_span_and_the_oldest_go_past_max_logs() {
        use super::super::model::{KeyValue as Kv, Log};

        let st = store().with_max_logs(2);
        let log = |at: u64, text: &str| SpanLog {
            service: "order-service".into(),
            trace_id: Some(TraceId([1; 16])),
            span_id: Some(SpanId([1; 8])),
            level: "INFO".into(),
            log: Log {
                timestamp: at,
                fields: vec![Kv::string("event", text)],
            },
        };
        st.write_logs(vec![log(30, "third"), log(10, "first"), log(20, "second")]);
        st.write(vec![span(1, 1, None, "order-service", "POST /orders", 5)]);
        assert_eq!(st.log_count(), 2);
        let trace = st.get_trace(TraceId([1; 16])).unwrap();
        let events: Vec<_> = trace[0]
            .logs
            .iter()
            .map(|l| (l.timestamp, l.fields[0].value.clone()))
            .collect();
        assert_eq!(
            events,
            vec![
                (10, Value::String("first".into())),
                (20, Value::String("second".into()))
            ],
            "the first written (third, at 30) was evicted; the rest are in time order"
        );
    }

    #[test]
    fn spans_of_one_trace_in_several_batches_merge_and_reindex_by_start() {
        let st = store();
        st.write(vec![span(1, 2, Some(1), "b", "child", 2000)]);
        st.write(vec![span(1, 1, None, "a", "root", 1000)]);
        st.write(vec![span(1, 1, None, "a", "root", 1000)]);
        let t = st.get_trace(TraceId([1; 16])).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].operation_name, "root");
        assert_eq!(st.counts(), (1, 2));
        // The trace now starts at 1000: a window that ends before 2000 still finds it.
        let mut q = query("b");
        q.start_max = 1500;
        assert_eq!(st.find_traces(&q).len(), 1);
        assert_eq!(
            st.dependencies(0, u64::MAX),
            vec![DependencyLink {
                parent: "a".into(),
                child: "b".into(),
                call_count: 1
            }]
        );
    }

    #[test]
    fn span_bound_evicts_oldest_traces() {
        let st = MemoryStore::new(Limits {
            max_traces: 100,
            max_spans: 4,
        });
        for t in 1..=3 {
            st.write(vec![
                span(t, 1, None, "a", "x", u64::from(t)),
                span(t, 2, Some(1), "a", "y", u64::from(t)),
            ]);
        }
        assert_eq!(st.counts(), (2, 4));
        assert!(st.get_trace(TraceId([1; 16])).is_none());
    }

    #[test]
    fn search_filters_by_operation_kind_duration_and_tag() {
        let st = store();
        st.write(vec![
            span(1, 1, None, "a", "GET", 10),
            span(2, 5, None, "a", "POST", 20),
        ]);
        let mut q = query("a");
        assert_eq!(st.find_traces(&q).len(), 2);
        q.operation = Some("POST".into());
        assert_eq!(st.find_traces(&q).len(), 1);
        q.span_kind = Some(SpanKind::Client);
        assert_eq!(st.find_traces(&q).len(), 0);
        let mut q = query("a");
        q.duration_min = Some(3000);
        assert_eq!(st.find_traces(&q)[0][0].operation_name, "POST");
        let mut q = query("a");
        q.tags = vec![("http.response.status_code".into(), "200".into())];
        assert_eq!(st.find_traces(&q).len(), 2);
        q.tags = vec![("http.response.status_code".into(), "500".into())];
        assert_eq!(st.find_traces(&q).len(), 0);
        assert_eq!(
            st.operations("a", None)
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            vec!["GET", "POST"]
        );
        assert!(st.operations("a", Some(SpanKind::Client)).is_empty());
    }

    #[test]
    fn linked_from_follows_links_into_a_trace_and_forgets_evicted_sources() {
        let store = MemoryStore::new(Limits {
            max_traces: 3,
            max_spans: 1000,
        });
        store.write(vec![span(1, 1, None, "order-service", "POST /orders", 10)]);
        for source in [2u8, 3] {
            let mut linking = span(source, 1, None, "fulfilment", "process orders", 20);
            linking.links = vec![(TraceId([1; 16]), SpanId([1; 8]))];
            store.write(vec![linking]);
        }
        assert_eq!(
            store.linked_from(TraceId([1; 16])),
            vec![TraceId([2; 16]), TraceId([3; 16])]
        );
        assert!(store.linked_from(TraceId([2; 16])).is_empty());
        // Two more traces evict traces 1 and 2: trace 2 no longer links from anywhere held.
        store.write(vec![span(4, 1, None, "x", "y", 30)]);
        store.write(vec![span(5, 1, None, "x", "y", 40)]);
        assert_eq!(store.linked_from(TraceId([1; 16])), vec![TraceId([3; 16])]);
    }
}
