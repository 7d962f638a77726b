use super::*;
use crate::component::Host;
use crate::config::Node;
use crate::config::{ComponentId, Errors};
use crate::telemetry::SelfTelemetry;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use std::sync::Mutex as StdMutex;

#[derive(Default)]
struct Sink(StdMutex<Vec<Span>>);

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if let Batch::Traces(rs) = batch {
            let mut v = self.0.lock().unwrap();
            for s in rs
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
            {
                v.push(s);
            }
        }
        Ok(())
    }
}

fn span(trace: u8, id: u8, dur_ms: u64, error: bool) -> ResourceSpans {
    ResourceSpans {
        scope_spans: vec![ScopeSpans {
            spans: vec![Span {
                trace_id: vec![trace; 16],
                span_id: vec![id; 8],
                start_time_unix_nano: 1_000_000_000,
                end_time_unix_nano: 1_000_000_000 + dur_ms * 1_000_000,
                status: error.then(|| Status {
                    code: 2,
                    message: "boom".into(),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

const TEACHING: &str = "decision_wait: 100ms\nnum_traces: 1000\npolicies:\n  - name: errors\n    type: status_code\n    status_code: {status_codes: [ERROR]}\n  - name: slow\n    type: latency\n    latency: {threshold_ms: 500}\n  - name: some-of-the-rest\n    type: probabilistic\n    probabilistic: {sampling_percentage: 10}\n";

fn sampler_with_telemetry(yaml: &str) -> (SharedConsumer, Arc<Sink>, Arc<SelfTelemetry>) {
    let node = Node::parse("t.yaml", yaml).unwrap();
    let sink = Arc::new(Sink::default());
    let telemetry = Arc::new(SelfTelemetry::default());
    let ctx = BuildContext {
        id: ComponentId::parse("tail_sampling").unwrap(),
        telemetry: telemetry.clone(),
        host: Arc::new(Host::default()),
    };
    (
        build(
            &registry::decoded_for::<TailSamplingConfig>(&node),
            ctx,
            Signal::Traces,
            sink.clone(),
        )
        .unwrap(),
        sink,
        telemetry,
    )
}

fn sampler(yaml: &str) -> (SharedConsumer, Arc<Sink>) {
    let (p, s, _) = sampler_with_telemetry(yaml);
    (p, s)
}

#[tokio::test]
async fn keeps_every_error_trace_and_every_slow_one_and_some_of_the_rest() {
    let (p, sink) = sampler(TEACHING);
    // 200 traces: 1-20 have an error in their second span, 21-40 are slow, the rest are fast and fine.
    for t in 1..=200u8 {
        p.consume(Batch::Traces(vec![span(t, 1, 10, false)]))
            .await
            .unwrap();
        let slow = (21..=40).contains(&t);
        p.consume(Batch::Traces(vec![span(
            t,
            2,
            if slow { 800 } else { 10 },
            (1..=20).contains(&t),
        )]))
        .await
        .unwrap();
    }
    p.shutdown().await;
    let kept = sink.0.lock().unwrap();
    let traces: std::collections::HashSet<u8> = kept.iter().map(|s| s.trace_id[0]).collect();
    for t in 1..=40u8 {
        assert!(
            traces.contains(&t),
            "trace {t} (error or slow) must be kept"
        );
    }
    // Whole traces: both spans of each kept trace.
    assert_eq!(kept.len(), traces.len() * 2);
    let rest = traces.iter().filter(|t| **t > 40).count();
    assert!(
        (3..=40).contains(&rest),
        "about 10% of the 160 others, got {rest}"
    );
}

#[tokio::test]
async fn late_spans_follow_the_decision() {
    let (p, sink) = sampler(TEACHING);
    p.consume(Batch::Traces(vec![span(7, 1, 10, true)]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sink.0.lock().unwrap().len(),
        1,
        "decided after decision_wait"
    );
    p.consume(Batch::Traces(vec![span(7, 9, 10, false)]))
        .await
        .unwrap();
    assert_eq!(
        sink.0.lock().unwrap().len(),
        2,
        "a late span of a kept trace passes at once"
    );
}

#[tokio::test]
async fn memory_stays_bounded_by_num_traces() {
    let yaml = TEACHING
        .replace("num_traces: 1000", "num_traces: 10")
        .replace("decision_wait: 100ms", "decision_wait: 1h");
    let (p, sink, telemetry) = sampler_with_telemetry(&yaml);
    for t in 0..100u8 {
        p.consume(Batch::Traces(vec![span(t, 1, 10, t % 10 == 0)]))
            .await
            .unwrap();
    }
    let text = telemetry.render();
    assert!(text.contains("otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total{processor=\"tail_sampling\"} 90\n"), "{text}");
    // Decided early still means decided by policy: the error traces among them were kept.
    let kept: Vec<u8> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.trace_id[0])
        .collect();
    for t in (0..90u8).filter(|t| t % 10 == 0) {
        assert!(kept.contains(&t), "error trace {t} kept");
    }
}

#[test]
fn bad_policies_are_reported() {
    let node = Node::parse("t.yaml", "policies:\n  - name: a\n    type: latency\n  - name: b\n    type: status_code\n    status_code: {status_codes: [BAD]}\n  - name: c\n    type: sometimes\n").unwrap();
    let mut errs = Errors::default();
    assert!(
        registry::check::<TailSamplingConfig>(&node, "processors::tail_sampling", &mut errs)
            .is_none()
    );
    let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs[0].contains("policy \"a\": type latency needs a `latency:` section"),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("unknown status code \"BAD\""), "{msgs:?}");
    assert!(
        msgs[2].contains("unknown policy type \"sometimes\""),
        "{msgs:?}"
    );
}

#[test]
fn expected_new_traces_per_sec_sizes_the_waiting_room_as_in_go() {
    let cfg = |rate, wait, num_traces| TailSamplingConfig {
        expected_new_traces_per_sec: rate,
        decision_wait: GoDuration::secs(wait),
        num_traces,
        ..Default::default()
    };
    // The traces that arrive within one decision wait at the expected rate...
    assert_eq!(cfg(100, 30, 50_000).initial_capacity(), 3_000);
    // ...never more than may wait at all, and nothing when no rate is given.
    assert_eq!(cfg(10_000, 30, 50_000).initial_capacity(), 50_000);
    assert_eq!(cfg(0, 30, 50_000).initial_capacity(), 0);
}
