//! The end-of-run summary: requests by kind and status, throughput, latency percentiles,
//! errors, and links to the traces worth opening.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::cli::Scenario;
use crate::workload::Sample;

/// The summary of a run; printed as text, or as JSON with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub requests: u64,
    pub duration_secs: f64,
    pub throughput_per_sec: f64,
    pub latency_ms: Percentiles,
    /// Per kind of request, in the order of [`crate::mix::RequestKind`].
    pub by_kind: BTreeMap<String, KindSummary>,
    /// All requests by status code; `"no_response"` for transport errors and timeouts.
    pub statuses: BTreeMap<String, u64>,
    /// Transport errors and 5xx responses.
    pub errors: u64,
    /// 4xx responses (expected for declined cards, invalid orders and unknown skus).
    pub client_errors: u64,
    /// The most frequent error messages, most frequent first.
    pub top_errors: Vec<ErrorCount>,
    pub slowest: Option<TraceLink>,
    pub failed: Option<TraceLink>,
    /// True when Ctrl-C stopped the run before its bound.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub count: u64,
    pub statuses: BTreeMap<String, u64>,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorCount {
    pub count: u64,
    pub message: String,
}

/// A request worth opening in the trace explorer.
#[derive(Debug, Clone, Serialize)]
pub struct TraceLink {
    pub kind: String,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub trace_id: String,
    pub url: String,
}

fn status_key(status: Option<u16>) -> String {
    status.map_or_else(|| "no_response".to_owned(), |s| s.to_string())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Nearest-rank percentiles of `latencies` (sorted here).
fn percentiles(latencies: &mut [Duration]) -> Percentiles {
    if latencies.is_empty() {
        return Percentiles::default();
    }
    latencies.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        millis(latencies[index.clamp(1, latencies.len()) - 1])
    };
    Percentiles {
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: millis(latencies[latencies.len() - 1]),
    }
}

impl Summary {
    pub fn new(
        samples: &[Sample],
        elapsed: Duration,
        scenario: Scenario,
        seed: u64,
        explorer: &str,
        interrupted: bool,
    ) -> Self {
        let explorer = explorer.trim_end_matches('/');
        let link = |sample: &Sample| {
            sample.trace_id.as_ref().map(|trace_id| TraceLink {
                kind: sample.kind.name().to_owned(),
                status: sample.status,
                latency_ms: millis(sample.latency),
                trace_id: trace_id.clone(),
                url: format!("{explorer}/trace/{trace_id}"),
            })
        };

        let mut by_kind = BTreeMap::new();
        for kind in crate::mix::RequestKind::ALL {
            let of_kind: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let mut statuses = BTreeMap::new();
            for sample in &of_kind {
                *statuses.entry(status_key(sample.status)).or_insert(0) += 1;
            }
            let mut latencies: Vec<Duration> = of_kind.iter().map(|s| s.latency).collect();
            by_kind.insert(
                kind.name().to_owned(),
                KindSummary {
                    count: of_kind.len() as u64,
                    statuses,
                    latency_ms: percentiles(&mut latencies),
                },
            );
        }

        let mut statuses = BTreeMap::new();
        let mut messages: BTreeMap<&str, u64> = BTreeMap::new();
        for sample in samples {
            *statuses.entry(status_key(sample.status)).or_insert(0) += 1;
            if let Some(error) = &sample.error {
                *messages.entry(error.as_str()).or_insert(0) += 1;
            }
        }
        let mut top_errors: Vec<ErrorCount> = messages
            .into_iter()
            .map(|(message, count)| ErrorCount {
                count,
                message: message.to_owned(),
            })
            .collect();
        top_errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        top_errors.truncate(5);

        let slowest = samples
            .iter()
            .filter(|s| s.trace_id.is_some())
            .max_by_key(|s| s.latency)
            .and_then(link);
        // A 5xx or lost request is the most instructive failure; a 4xx will do otherwise.
        let failed = samples
            .iter()
            .filter(|s| s.trace_id.is_some())
            .find(|s| s.is_error())
            .or_else(|| {
                samples
                    .iter()
                    .filter(|s| s.trace_id.is_some())
                    .find(|s| s.status.is_some_and(|st| st >= 400))
            })
            .and_then(link);

        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        let secs = elapsed.as_secs_f64();
        Self {
            scenario: format!("{scenario:?}").to_lowercase(),
            seed,
            requests: samples.len() as u64,
            duration_secs: (secs * 100.0).round() / 100.0,
            throughput_per_sec: if secs > 0.0 {
                ((samples.len() as f64 / secs) * 100.0).round() / 100.0
            } else {
                0.0
            },
            latency_ms: percentiles(&mut latencies),
            by_kind,
            statuses,
            errors: samples.iter().filter(|s| s.is_error()).count() as u64,
            client_errors: samples
                .iter()
                .filter(|s| s.status.is_some_and(|st| (400..500).contains(&st)))
                .count() as u64,
            top_errors,
            slowest,
            failed,
            interrupted,
        }
    }

    /// The human summary printed at the end of a run.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\ntraffic: {} requests in {:.1}s ({:.1} req/s), scenario {}, seed {}{}",
            self.requests,
            self.duration_secs,
            self.throughput_per_sec,
            self.scenario,
            self.seed,
            if self.interrupted {
                " (stopped by Ctrl-C)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "\n  {:<18} {:>6}  {:<30} {:>9} {:>9}",
            "kind", "count", "statuses", "p50", "p99"
        );
        for (kind, summary) in &self.by_kind {
            let statuses = summary
                .statuses
                .iter()
                .map(|(status, n)| format!("{status} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "  {:<18} {:>6}  {:<30} {:>6.1} ms {:>6.1} ms",
                kind, summary.count, statuses, summary.latency_ms.p50, summary.latency_ms.p99
            );
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "\nlatency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50, l.p90, l.p99, l.max
        );
        let _ = writeln!(
            out,
            "errors: {} (5xx or no response), client errors: {} (4xx)",
            self.errors, self.client_errors
        );
        for error in &self.top_errors {
            let _ = writeln!(out, "  {} × {}", error.count, error.message);
        }
        if let Some(slowest) = &self.slowest {
            let _ = writeln!(
                out,
                "\nslowest request: {} ({}, {:.1} ms)\n  {}",
                slowest.kind,
                status_key(slowest.status),
                slowest.latency_ms,
                slowest.url
            );
        }
        if let Some(failed) = &self.failed {
            let _ = writeln!(
                out,
                "a failed request: {} ({}, {:.1} ms)\n  {}",
                failed.kind,
                status_key(failed.status),
                failed.latency_ms,
                failed.url
            );
        }
        if self.slowest.is_none() && self.requests > 0 {
            let _ = writeln!(
                out,
                "\n(no trace ids: telemetry is off, so there are no trace links)"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::RequestKind;

    fn sample(kind: RequestKind, status: Option<u16>, ms: u64, trace: &str) -> Sample {
        Sample {
            kind,
            status,
            latency: Duration::from_millis(ms),
            trace_id: Some(trace.to_owned()),
            error: status
                .is_none_or(|s| s >= 500)
                .then(|| format!("boom {status:?}")),
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&mut latencies);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
    }

    #[test]
    fn summary_counts_by_kind_and_status_and_links_the_interesting_traces() {
        let samples = vec![
            sample(RequestKind::SingleItemOrder, Some(201), 20, "a"),
            sample(RequestKind::SingleItemOrder, Some(201), 900, "slow"),
            sample(RequestKind::DeclinedCard, Some(402), 15, "declined"),
            sample(RequestKind::GatewayTimeout, Some(504), 300, "timeout"),
            sample(RequestKind::ViewProduct, None, 5, "lost"),
        ];
        let summary = Summary::new(
            &samples,
            Duration::from_secs(2),
            Scenario::Mixed,
            9,
            "http://explorer/",
            false,
        );
        assert_eq!(summary.requests, 5);
        assert_eq!(summary.throughput_per_sec, 2.5);
        assert_eq!(summary.by_kind["single_item_order"].statuses["201"], 2);
        assert_eq!(summary.statuses["no_response"], 1);
        assert_eq!((summary.errors, summary.client_errors), (2, 1));
        assert_eq!(summary.slowest.unwrap().url, "http://explorer/trace/slow");
        assert_eq!(summary.failed.unwrap().trace_id, "timeout");
    }
}
