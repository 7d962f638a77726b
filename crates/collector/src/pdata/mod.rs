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

    /// Cuts the batch into consecutive batches of at most `max` items each (0: no limit),
    /// in order, keeping resource and scope grouping: a resource or scope cut in two has its
    /// envelope (attributes, schema URL) copied onto both halves; spans, records and metrics
    /// are moved, never copied. Used by the batch processor's `send_batch_max_size`.
    ///
    /// Metrics are cut at metric granularity: a metric's data points stay together, so a
    /// piece may exceed `max` by the points of one metric.
    pub fn split_into(self, max: usize) -> Vec<Batch> {
        if max == 0 {
            return vec![self];
        }
        match self {
            Batch::Traces(rs) => chunks(rs, max, |r| &mut r.scope_spans, |s| &mut s.spans, |_| 1)
                .into_iter()
                .map(Batch::Traces)
                .collect(),
            Batch::Logs(rl) => chunks(
                rl,
                max,
                |r| &mut r.scope_logs,
                |s| &mut s.log_records,
                |_| 1,
            )
            .into_iter()
            .map(Batch::Logs)
            .collect(),
            Batch::Metrics(rm) => chunks(
                rm,
                max,
                |r| &mut r.scope_metrics,
                |s| &mut s.metrics,
                |m| data_point_count(m.data.as_ref()),
            )
            .into_iter()
            .map(Batch::Metrics)
            .collect(),
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

/// One pass over `resources` filling each piece to exactly `max` (by `weight`): resources
/// and scopes that fit are moved whole, a scope that does not is cut item by item. Only the envelopes of
/// resources and scopes that span two pieces are cloned, emptied first.
fn chunks<R: Clone, S: Clone, T>(
    resources: Vec<R>,
    max: usize,
    scopes_of: impl Fn(&mut R) -> &mut Vec<S>,
    items_of: impl Fn(&mut S) -> &mut Vec<T>,
    weight: impl Fn(&T) -> usize,
) -> Vec<Vec<R>> {
    let mut pieces = Vec::new();
    let mut piece: Vec<R> = Vec::new();
    let mut room = max;
    for mut resource in resources {
        let total: usize = scopes_of(&mut resource)
            .iter_mut()
            .flat_map(|scope| items_of(scope).iter())
            .map(&weight)
            .sum();
        if room == 0 && total > 0 {
            pieces.push(std::mem::take(&mut piece));
            room = max;
        }
        if total <= room {
            // The whole resource fits: moved as it is, its envelope not copied.
            room -= total;
            piece.push(resource);
            continue;
        }
        let scopes = std::mem::take(scopes_of(&mut resource));
        // `resource` is now its bare envelope; `head` is its part in the current piece.
        let mut head = resource.clone();
        for mut scope in scopes {
            let total: usize = items_of(&mut scope).iter().map(&weight).sum();
            if room == 0 && total > 0 {
                if !scopes_of(&mut head).is_empty() {
                    piece.push(std::mem::replace(&mut head, resource.clone()));
                }
                pieces.push(std::mem::take(&mut piece));
                room = max;
            }
            if total <= room {
                // The common case: the whole scope fits and is moved as it is.
                room -= total;
                scopes_of(&mut head).push(scope);
                continue;
            }
            let items = std::mem::take(items_of(&mut scope));
            let mut part = scope.clone();
            for item in items {
                let w = weight(&item);
                let pending = !items_of(&mut part).is_empty()
                    || !scopes_of(&mut head).is_empty()
                    || !piece.is_empty();
                // An item heavier than a whole piece (a metric with many points) goes alone.
                if w > room && pending {
                    if !items_of(&mut part).is_empty() {
                        scopes_of(&mut head).push(std::mem::replace(&mut part, scope.clone()));
                    }
                    if !scopes_of(&mut head).is_empty() {
                        piece.push(std::mem::replace(&mut head, resource.clone()));
                    }
                    pieces.push(std::mem::take(&mut piece));
                    room = max;
                }
                room = room.saturating_sub(w);
                items_of(&mut part).push(item);
            }
            scopes_of(&mut head).push(part);
        }
        piece.push(head);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
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
            schema_url: "https://example.com/schema".into(),
            ..Default::default()
        }])
    }

    #[test]
    fn split_into_cuts_in_order_and_moves_every_item_once() {
        let pieces = traces(&[3, 4]).split_into(5);
        assert_eq!(
            pieces.iter().map(Batch::item_count).collect::<Vec<_>>(),
            [5, 2]
        );
        let names = |b: &Batch| match b {
            Batch::Traces(rs) => rs
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.iter().map(|sp| sp.name.clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        // The first scope whole and two spans of the second; the second's other two after.
        assert_eq!(
            names(&pieces[0]),
            [vec!["s0", "s1", "s2"], vec!["s0", "s1"]]
        );
        assert_eq!(names(&pieces[1]), [vec!["s2", "s3"]]);
        // Both pieces carry the resource's envelope.
        for piece in &pieces {
            let Batch::Traces(rs) = piece else {
                unreachable!()
            };
            assert_eq!(rs.len(), 1);
            assert_eq!(rs[0].schema_url, "https://example.com/schema");
        }
    }

    /// Every item once, in order, under its own resource and scope, and every piece but the
    /// last filled to exactly `max`: for many shapes of batch and many `max`.
    #[test]
    fn split_into_keeps_order_and_envelopes_and_fills_pieces() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let resources: Vec<ResourceSpans> = (0..next(5))
                .map(|r| ResourceSpans {
                    schema_url: format!("r{r}"),
                    scope_spans: (0..next(4))
                        .map(|sc| ScopeSpans {
                            schema_url: format!("r{r}s{sc}"),
                            spans: (0..next(9))
                                .map(|i| Span {
                                    name: format!("r{r}s{sc}i{i}"),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
            let flat = |rs: &[ResourceSpans]| -> Vec<String> {
                rs.iter()
                    .flat_map(|r| {
                        r.scope_spans.iter().flat_map(move |s| {
                            s.spans.iter().map(move |sp| {
                                assert!(sp.name.starts_with(&s.schema_url));
                                assert!(s.schema_url.starts_with(&r.schema_url));
                                sp.name.clone()
                            })
                        })
                    })
                    .collect()
            };
            let expected = flat(&resources);
            let max = 1 + next(10) as usize;
            let pieces = Batch::Traces(resources).split_into(max);
            let mut got = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let Batch::Traces(rs) = piece else {
                    unreachable!()
                };
                if i + 1 < pieces.len() {
                    assert_eq!(piece.item_count(), max);
                } else {
                    assert!(piece.item_count() <= max);
                }
                got.extend(flat(rs));
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn split_into_exact_multiples_and_no_limit() {
        let pieces = traces(&[4, 4]).split_into(4);
        assert_eq!(
            pieces.iter().map(Batch::item_count).collect::<Vec<_>>(),
            [4, 4]
        );
        assert_eq!(traces(&[4, 4]).split_into(0), vec![traces(&[4, 4])]);
        assert_eq!(traces(&[4, 4]).split_into(100), vec![traces(&[4, 4])]);
        let whole: Vec<Batch> = traces(&[3, 0, 5]).split_into(1);
        assert_eq!(whole.len(), 8);
        assert!(whole.iter().all(|b| b.item_count() == 1));
    }
}
