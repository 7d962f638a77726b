//! The telemetry that flows through pipelines: OTLP's own protobuf types, grouped by signal.
//!
//! We keep the `Resource*` vectors of the OTLP export requests as they arrive, so a pipeline
//! that only batches and forwards never rebuilds the payload's structure.

pub mod attributes;

use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric::Data};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use std::fmt;

/// The three OTLP signals a pipeline can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The item name the Go collector uses in its own metric names
    /// (`otelcol_receiver_accepted_spans`, `..._metric_points`, `..._log_records`).
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
            Signal::Logs => "log_records",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit of work handed from component to component.
#[derive(Clone, Debug, PartialEq)]
pub enum Batch {
    Traces(Vec<ResourceSpans>),
    Metrics(Vec<ResourceMetrics>),
    Logs(Vec<ResourceLogs>),
}

impl Batch {
    pub fn signal(&self) -> Signal {
        match self {
            Batch::Traces(_) => Signal::Traces,
            Batch::Metrics(_) => Signal::Metrics,
            Batch::Logs(_) => Signal::Logs,
        }
    }

    pub fn empty(signal: Signal) -> Batch {
        match signal {
            Signal::Traces => Batch::Traces(Vec::new()),
            Signal::Metrics => Batch::Metrics(Vec::new()),
            Signal::Logs => Batch::Logs(Vec::new()),
        }
    }

    /// Spans, metric data points or log records: the unit the Go collector counts in.
    pub fn item_count(&self) -> usize {
        match self {
            Batch::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Batch::Metrics(rm) => rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| data_point_count(m.data.as_ref()))
                .sum(),
            Batch::Logs(rl) => rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }

    /// Appends another batch of the same signal; a batch of another signal is a bug.
    pub fn append(&mut self, other: Batch) {
        match (self, other) {
            (Batch::Traces(a), Batch::Traces(b)) => a.extend(b),
            (Batch::Metrics(a), Batch::Metrics(b)) => a.extend(b),
            (Batch::Logs(a), Batch::Logs(b)) => a.extend(b),
            (a, b) => panic!("cannot append {} to {}", b.signal(), a.signal()),
        }
    }

    /// Splits off a batch of at most `max` items from the front, keeping resource and scope
    /// grouping; `self` keeps the rest. Used by the batch processor's send_batch_max_size.
    pub fn split_front(&mut self, max: usize) -> Batch {
        match self {
            Batch::Traces(rs) => Batch::Traces(split_resources(
                rs,
                max,
                |r| &mut r.scope_spans,
                |s| &mut s.spans,
            )),
            Batch::Logs(rl) => Batch::Logs(split_resources(
                rl,
                max,
                |r| &mut r.scope_logs,
                |s| &mut s.log_records,
            )),
            // Metrics split at metric granularity: a metric's data points stay together,
            // so a batch may exceed `max` by the points of one metric.
            Batch::Metrics(rm) => Batch::Metrics(split_resources(
                rm,
                max,
                |r| &mut r.scope_metrics,
                |s| &mut s.metrics,
            )),
        }
    }
}

/// Data points in one metric.
pub fn data_point_count(data: Option<&Data>) -> usize {
    match data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Moves up to `max` leaf items (with copies of their resource and scope envelopes) out of
/// the front of `resources`.
fn split_resources<R: Clone, S: Clone, T>(
    resources: &mut Vec<R>,
    max: usize,
    scopes_of: impl Fn(&mut R) -> &mut Vec<S>,
    items_of: impl Fn(&mut S) -> &mut Vec<T>,
) -> Vec<R> {
    let mut out = Vec::new();
    let mut left = max;
    while left > 0 && !resources.is_empty() {
        let total: usize = scopes_of(&mut resources[0])
            .iter_mut()
            .map(|s| items_of(s).len())
            .sum();
        if total <= left {
            left -= total;
            out.push(resources.remove(0));
            continue;
        }
        // Take part of this resource: clone the envelope without its scopes.
        let mut head = resources[0].clone();
        scopes_of(&mut head).clear();
        let scopes = scopes_of(&mut resources[0]);
        while left > 0 && !scopes.is_empty() {
            let n = items_of(&mut scopes[0]).len();
            if n <= left {
                left -= n;
                scopes_of(&mut head).push(scopes.remove(0));
            } else {
                let mut part = scopes[0].clone();
                let taken: Vec<T> = items_of(&mut scopes[0]).drain(..left).collect();
                *items_of(&mut part) = taken;
                scopes_of(&mut head).push(part);
                left = 0;
            }
        }
        out.push(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};

    fn traces(spans_per_scope: &[usize]) -> Batch {
        let scope_spans = spans_per_scope
            .iter()
            .map(|n| ScopeSpans {
                spans: (0..*n)
                    .map(|i| Span {
                        name: format!("s{i}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        Batch::Traces(vec![ResourceSpans {
            scope_spans,
            ..Default::default()
        }])
    }

    #[test]
    fn split_front_takes_exactly_max_items_and_keeps_the_rest() {
        let mut b = traces(&[3, 4]);
        let head = b.split_front(5);
        assert_eq!(head.item_count(), 5);
        assert_eq!(b.item_count(), 2);
        let rest = b.split_front(100);
        assert_eq!(rest.item_count(), 2);
        assert!(b.is_empty());
    }
}
