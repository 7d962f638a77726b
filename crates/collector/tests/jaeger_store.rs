//! The jaeger_storage memory backend under load: it stays bounded, evicts the oldest
//! traces first, and takes concurrent writes and queries without deadlock or loss.

use collector::extensions::jaeger_storage::model::{
    KeyValue, Process, Span, SpanId, SpanKind, TraceId, Value,
};
use collector::extensions::jaeger_storage::store::{Limits, MemoryStore, TraceQuery};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn trace_id(n: u64) -> TraceId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    b[0] = 1;
    TraceId(b)
}

/// A two-span trace: a server span of `service` and its child, error every 10th trace.
fn trace(n: u64, service: &str, process: &Arc<Process>) -> Vec<Span> {
    let start = 1_700_000_000_000_000 + n * 1000;
    let root = Span {
        trace_id: trace_id(n),
        span_id: SpanId([1; 8]),
        parent_span_id: None,
        operation_name: format!("{service} GET /items"),
        kind: SpanKind::Server,
        start_time: start,
        duration: 500,
        tags: vec![
            KeyValue::new("error", Value::Bool(n.is_multiple_of(10))),
            KeyValue::new("n", Value::Int64(n as i64)),
        ],
        logs: vec![],
        links: vec![],
        process: process.clone(),
    };
    let child = Span {
        span_id: SpanId([2; 8]),
        parent_span_id: Some(SpanId([1; 8])),
        operation_name: "db.query".into(),
        kind: SpanKind::Client,
        start_time: start + 10,
        duration: 100,
        tags: vec![],
        ..root.clone()
    };
    vec![root, child]
}

fn process(service: &str) -> Arc<Process> {
    Arc::new(Process {
        service_name: service.into(),
        tags: vec![KeyValue::string("host.name", "lab")],
    })
}

fn all_of(service: &str) -> TraceQuery {
    TraceQuery {
        service: service.into(),
        start_max: u64::MAX,
        limit: usize::MAX,
        ..Default::default()
    }
}

#[test]
fn eviction_keeps_the_store_at_max_traces_and_drops_the_oldest() {
    let max = 50;
    let store = MemoryStore::new(Limits {
        max_traces: max,
        max_spans: 1_000_000,
    });
    let p = process("shop");
    for n in 0..3 * max as u64 {
        store.write(trace(n, "shop", &p));
        assert!(store.counts().0 <= max, "more than max_traces after {n}");
    }
    assert_eq!(store.counts(), (max, 2 * max));
    for n in 0..2 * max as u64 {
        assert!(
            store.get_trace(trace_id(n)).is_none(),
            "trace {n} should be evicted"
        );
    }
    for n in 2 * max as u64..3 * max as u64 {
        assert_eq!(store.get_trace(trace_id(n)).unwrap().len(), 2, "trace {n}");
    }
    // The indexes forgot the evicted traces too: a search finds exactly what is held.
    let found = store.find_traces(&all_of("shop"));
    assert_eq!(found.len(), max);
    assert_eq!(
        found[0][0].trace_id,
        trace_id(3 * max as u64 - 1),
        "newest first"
    );
    let mut q = all_of("shop");
    q.tags = vec![("error".into(), "true".into())];
    assert_eq!(store.find_traces(&q).len(), max / 10);
}

#[test]
fn eviction_by_span_count_bounds_memory_when_traces_are_large() {
    let store = MemoryStore::new(Limits {
        max_traces: 1_000,
        max_spans: 40,
    });
    let p = process("shop");
    for n in 0..100 {
        store.write(trace(n, "shop", &p));
    }
    assert_eq!(store.counts(), (20, 40));
    assert!(store.get_trace(trace_id(79)).is_none());
    assert!(store.get_trace(trace_id(80)).is_some());
}

#[test]
fn concurrent_writers_and_readers_neither_deadlock_nor_lose_spans() {
    const WRITERS: u64 = 4;
    const PER_WRITER: u64 = 500;
    let store = Arc::new(MemoryStore::new(Limits {
        max_traces: 1_000_000,
        max_spans: 10_000_000,
    }));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let store = store.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut queries = 0u64;
                loop {
                    let service = format!("svc-{}", queries % WRITERS);
                    let mut q = all_of(&service);
                    q.limit = 20;
                    if r == 1 {
                        q.tags = vec![("error".into(), "true".into())];
                    }
                    for t in store.find_traces(&q) {
                        // A trace is never seen half-written: both spans of a batch or none.
                        assert_eq!(t.len(), 2);
                    }
                    let _ = store.services();
                    let _ = store.operations(&service, None);
                    let _ = store.dependencies(0, u64::MAX);
                    queries += 1;
                    if done.load(Ordering::SeqCst) {
                        break queries;
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                let service = format!("svc-{w}");
                let p = process(&service);
                for i in 0..PER_WRITER {
                    store.write(trace(w * PER_WRITER + i, &service, &p));
                }
            })
        })
        .collect();
    // A deadlock would hang here; the test harness's timeout is the guard, not a clock.
    for w in writers {
        w.join().expect("writer panicked");
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        let queries = r.join().expect("reader panicked");
        assert!(queries > 0);
    }
    assert_eq!(
        store.counts(),
        (
            (WRITERS * PER_WRITER) as usize,
            (2 * WRITERS * PER_WRITER) as usize
        )
    );
    for w in 0..WRITERS {
        let service = format!("svc-{w}");
        assert_eq!(
            store.find_traces(&all_of(&service)).len(),
            PER_WRITER as usize
        );
    }
    assert_eq!(store.services().len(), WRITERS as usize);
}
