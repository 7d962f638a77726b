//! The `tail_sampling` processor (the Go collector-contrib's tailsamplingprocessor): holds
//! each trace for `decision_wait`, then keeps or drops the whole trace by its policies — so
//! "keep every error and every slow trace, plus 10% of the rest" sees the complete trace.
//! Spans arriving after the decision follow it. At most `num_traces` traces wait; beyond
//! that the oldest is decided early (counted in
//! `otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total`).
//!
//! A trace is kept when any policy samples it (an `and` policy samples when all of its
//! sub-policies do).

mod policy;

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::GoDuration;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use crate::telemetry::Counter;
use async_trait::async_trait;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
pub use policy::{PolicyConfig, TraceView};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, watch};

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "tail_sampling",
    description: "Keeps or drops whole traces after seeing all their spans (errors, latency, attributes, rate, probability)",
    signals: &[Signal::Traces],
    validate: registry::validate::<TailSamplingConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailSamplingConfig {
    /// How long after a trace's first span the decision is made. Default 30s.
    pub decision_wait: GoDuration,
    /// Traces held in memory at most; the oldest is decided early when more arrive.
    /// Default 50000.
    pub num_traces: usize,
    /// New traces per second to expect: as in Go, a sizing hint, here the initial capacity of
    /// the traces waiting for a decision (this rate × `decision_wait`, at most `num_traces`).
    /// Default 0 (grow as traces come).
    pub expected_new_traces_per_sec: u64,
    /// The policies; a trace is kept when any of them samples it. Required.
    pub policies: Vec<PolicyConfig>,
}

impl TailSamplingConfig {
    /// How many traces to make room for at start: the traces that arrive within one
    /// decision wait at the expected rate.
    fn initial_capacity(&self) -> usize {
        let per_wait = self
            .expected_new_traces_per_sec
            .saturating_mul(self.decision_wait.0.as_secs().max(1));
        usize::try_from(per_wait)
            .unwrap_or(usize::MAX)
            .min(self.num_traces)
    }
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        TailSamplingConfig {
            decision_wait: GoDuration::secs(30),
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            policies: Vec::new(),
        }
    }
}

impl ComponentConfig for TailSamplingConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.policies.is_empty() {
            v.push(("policies", "at least one policy is required".to_string()));
        }
        if self.num_traces == 0 {
            v.push(("num_traces", "must be at least 1".to_string()));
        }
        for p in &self.policies {
            if let Err(e) = p.check() {
                v.push(("policies", format!("policy \"{}\": {e}", p.name)));
            }
        }
        v
    }
}

fn build(
    decoded: &Decoded,
    ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: TailSamplingConfig = registry::typed::<TailSamplingConfig>(decoded).clone();
    let id = ctx.id.to_string();
    let l = [("processor", id.as_str())];
    let policies = cfg
        .policies
        .iter()
        .map(|p| p.compile())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let expected = cfg.initial_capacity();
    let p = Arc::new(TailSampler {
        state: Mutex::new(State {
            pending: HashMap::with_capacity(expected),
            order: VecDeque::with_capacity(expected),
            decided: HashMap::new(),
            decided_order: VecDeque::new(),
        }),
        policies,
        wait: cfg.decision_wait.0,
        num_traces: cfg.num_traces,
        next,
        sampled: ctx.telemetry.counter(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            "Traces sampled (kept) by the tail sampler",
            &[("processor", id.as_str()), ("sampled", "true")],
        ),
        not_sampled: ctx.telemetry.counter(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            "Traces sampled (kept) by the tail sampler",
            &[("processor", id.as_str()), ("sampled", "false")],
        ),
        dropped_early: ctx.telemetry.counter(
            "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total",
            "Traces decided before decision_wait because num_traces was reached",
            &l,
        ),
        late_spans: ctx.telemetry.counter(
            "otelcol_processor_tail_sampling_late_span_total",
            "Spans that arrived after their trace was decided",
            &l,
        ),
        stop: watch::channel(false).0,
        id,
    });
    let ticker = p.clone();
    let mut stop = p.stop.subscribe();
    let tick_every =
        (cfg.decision_wait.0 / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(tick_every);
        loop {
            tokio::select! {
                _ = tick.tick() => ticker.decide_due(Instant::now()).await,
                _ = stop.changed() => break,
            }
        }
    });
    Ok(p)
}

type TraceId = Vec<u8>;

struct Pending {
    first_seen: Instant,
    spans: Vec<ResourceSpans>,
}

struct State {
    pending: HashMap<TraceId, Pending>,
    /// Arrival order, oldest first, for decisions and eviction.
    order: VecDeque<TraceId>,
    /// Recent decisions, so late spans follow them; bounded like `pending`.
    decided: HashMap<TraceId, bool>,
    decided_order: VecDeque<TraceId>,
}

struct TailSampler {
    id: String,
    state: Mutex<State>,
    policies: Vec<policy::Policy>,
    wait: Duration,
    num_traces: usize,
    next: SharedConsumer,
    sampled: Counter,
    not_sampled: Counter,
    dropped_early: Counter,
    late_spans: Counter,
    stop: watch::Sender<bool>,
}

/// Splits resource spans by trace id, keeping each span's resource and scope envelope.
fn by_trace(resource_spans: Vec<ResourceSpans>) -> HashMap<TraceId, Vec<ResourceSpans>> {
    let mut out: HashMap<TraceId, Vec<ResourceSpans>> = HashMap::new();
    for mut rs in resource_spans {
        let scopes = std::mem::take(&mut rs.scope_spans);
        for mut ss in scopes {
            let spans = std::mem::take(&mut ss.spans);
            let mut per_trace: HashMap<TraceId, Vec<_>> = HashMap::new();
            for s in spans {
                per_trace.entry(s.trace_id.clone()).or_default().push(s);
            }
            for (tid, spans) in per_trace {
                let mut env = ResourceSpans {
                    resource: rs.resource.clone(),
                    scope_spans: Vec::new(),
                    schema_url: rs.schema_url.clone(),
                };
                env.scope_spans.push(ScopeSpans {
                    scope: ss.scope.clone(),
                    spans,
                    schema_url: ss.schema_url.clone(),
                });
                out.entry(tid).or_default().push(env);
            }
        }
    }
    out
}

impl TailSampler {
    fn decide(&self, spans: &[ResourceSpans]) -> bool {
        let view = TraceView::new(spans);
        self.policies.iter().any(|p| p.samples(&view))
    }

    fn remember(&self, st: &mut State, tid: TraceId, keep: bool) {
        st.decided.insert(tid.clone(), keep);
        st.decided_order.push_back(tid);
        while st.decided_order.len() > self.num_traces {
            if let Some(old) = st.decided_order.pop_front() {
                st.decided.remove(&old);
            }
        }
        if keep {
            self.sampled.add(1);
        } else {
            self.not_sampled.add(1);
        }
    }

    /// Decides every trace that has waited long enough (all of them when `now` is None).
    async fn decide_traces(&self, now: Option<Instant>) {
        let mut keep = Vec::new();
        {
            let mut st = self.state.lock().await;
            while let Some(tid) = st.order.front().cloned() {
                let Some(p) = st.pending.get(&tid) else {
                    st.order.pop_front();
                    continue;
                };
                if let Some(now) = now
                    && now.duration_since(p.first_seen) < self.wait
                {
                    break;
                }
                st.order.pop_front();
                let p = st.pending.remove(&tid).expect("pending trace");
                let k = self.decide(&p.spans);
                self.remember(&mut st, tid, k);
                if k {
                    keep.extend(p.spans);
                }
            }
        }
        self.forward(keep).await;
    }

    async fn decide_due(&self, now: Instant) {
        self.decide_traces(Some(now)).await;
    }

    async fn forward(&self, spans: Vec<ResourceSpans>) {
        if spans.is_empty() {
            return;
        }
        if let Err(e) = self.next.consume(Batch::Traces(spans)).await {
            tracing::warn!(processor = %self.id, error = %e, "sampled traces could not be handed on; they are dropped");
        }
    }
}

#[async_trait]
impl Consumer for TailSampler {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let Batch::Traces(rs) = batch else {
            return Err(ConsumeError::permanent("tail_sampling only handles traces"));
        };
        let mut now_keep = Vec::new();
        {
            let mut st = self.state.lock().await;
            let now = Instant::now();
            for (tid, spans) in by_trace(rs) {
                if let Some(&keep) = st.decided.get(&tid) {
                    self.late_spans.add(
                        spans
                            .iter()
                            .map(|r| {
                                r.scope_spans
                                    .iter()
                                    .map(|s| s.spans.len() as u64)
                                    .sum::<u64>()
                            })
                            .sum(),
                    );
                    if keep {
                        now_keep.extend(spans);
                    }
                    continue;
                }
                match st.pending.get_mut(&tid) {
                    Some(p) => p.spans.extend(spans),
                    None => {
                        st.pending.insert(
                            tid.clone(),
                            Pending {
                                first_seen: now,
                                spans,
                            },
                        );
                        st.order.push_back(tid);
                    }
                }
            }
            // Over capacity: decide the oldest traces now rather than grow without bound.
            while st.pending.len() > self.num_traces {
                let Some(tid) = st.order.pop_front() else {
                    break;
                };
                if let Some(p) = st.pending.remove(&tid) {
                    self.dropped_early.add(1);
                    let k = self.decide(&p.spans);
                    self.remember(&mut st, tid, k);
                    if k {
                        now_keep.extend(p.spans);
                    }
                }
            }
        }
        self.forward(now_keep).await;
        Ok(())
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.decide_traces(None).await;
    }
}

#[cfg(test)]
mod tests;
