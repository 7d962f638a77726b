//! The monitor: RED figures per service and operation, through Jaeger's SPM API
//! (`/api/metrics/calls`, `/api/metrics/errors`, `/api/metrics/latencies`,
//! `/api/metrics/minstep`), computed from the spans in the trace store, as Jaeger does when
//! it reads metrics straight from its trace storage instead of from Prometheus. So the
//! explorer shows rate, errors and duration with nothing else installed.
//!
//! Parameters as Jaeger's: `service` (repeatable; required), `groupByOperation`, `spanKind`
//! (repeatable, default `server`), `endTs` and `lookback` in ms (default now and 1 h),
//! `step` in ms (default 60 s), `quantile` for latencies (0 < q ≤ 1). Each point covers the
//! `step` that ends at its timestamp: calls are spans that started in it per second,
//! errors the share of those with `error=true`, latencies the quantile of their durations
//! in milliseconds (exact, from the durations, where Prometheus estimates from buckets).
//! Figures cover what the store still holds: evicted traces are not counted.

use super::params;
use crate::extensions::jaeger_storage::model::SpanKind;
use crate::extensions::jaeger_storage::store::{MemoryStore, RedSample};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Which figure a request asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    Calls,
    Errors,
    Latencies(f64),
}

/// A parsed request.
#[derive(Clone, Debug, PartialEq)]
pub struct MonitorQuery {
    pub services: Vec<String>,
    pub group_by_operation: bool,
    pub kinds: Vec<SpanKind>,
    /// µs since the epoch.
    pub end: u64,
    /// µs.
    pub lookback: u64,
    /// µs.
    pub step: u64,
}

/// The smallest step the monitor answers for, in ms (`/api/metrics/minstep`).
pub const MIN_STEP_MS: u64 = 1_000;

fn ms_param(p: &[(String, String)], name: &str, default_ms: u64) -> Result<u64, String> {
    match params::get(p, name) {
        None => Ok(default_ms),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("unable to parse param '{name}': {e} (\"{v}\")")),
    }
}

pub fn parse(p: &[(String, String)], now_us: u64) -> Result<MonitorQuery, String> {
    let services: Vec<String> = params::all(p, "service").map(str::to_owned).collect();
    if services.is_empty() {
        return Err("please provide at least one service name".into());
    }
    let group_by_operation = match params::get(p, "groupByOperation") {
        None => false,
        Some(v) => v.trim().parse::<bool>().map_err(|_| {
            format!("unable to parse param 'groupByOperation': \"{v}\" is not true or false")
        })?,
    };
    let mut kinds = Vec::new();
    for k in params::all(p, "spanKind") {
        let name = k.trim().to_ascii_lowercase();
        let name = name.strip_prefix("span_kind_").unwrap_or(&name);
        kinds.push(SpanKind::parse(name).ok_or_else(|| {
            format!(
                "unable to parse param 'spanKind': unknown span kind \"{k}\" (server, client, producer, consumer, internal)"
            )
        })?);
    }
    if kinds.is_empty() {
        kinds.push(SpanKind::Server);
    }
    let end = ms_param(p, "endTs", now_us / 1000)?.saturating_mul(1000);
    let lookback = ms_param(p, "lookback", 3_600_000)?.saturating_mul(1000);
    let step_ms = ms_param(p, "step", 60_000)?;
    if step_ms < MIN_STEP_MS {
        return Err(format!(
            "param 'step' must be at least {MIN_STEP_MS} ms (see /api/metrics/minstep)"
        ));
    }
    let step = step_ms * 1000;
    if lookback == 0 || lookback / step > 10_000 {
        return Err("params 'lookback' and 'step' must give between 1 and 10000 points".into());
    }
    Ok(MonitorQuery {
        services,
        group_by_operation,
        kinds,
        end,
        lookback,
        step,
    })
}

pub fn parse_quantile(p: &[(String, String)]) -> Result<f64, String> {
    let v = params::get(p, "quantile").ok_or("please provide a quantile between (0, 1]")?;
    match v.trim().parse::<f64>() {
        Ok(q) if q > 0.0 && q <= 1.0 => Ok(q),
        _ => Err(format!(
            "unable to parse param 'quantile': \"{v}\" is not between (0, 1]"
        )),
    }
}

#[derive(Serialize)]
pub struct MetricFamily {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    help: String,
    metrics: Vec<Metric>,
}

#[derive(Serialize)]
struct Metric {
    labels: Vec<Label>,
    #[serde(rename = "metricPoints")]
    metric_points: Vec<Point>,
}

#[derive(Serialize)]
struct Label {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Point {
    #[serde(rename = "gaugeValue")]
    gauge_value: Gauge,
    timestamp: String,
}

#[derive(Serialize)]
struct Gauge {
    #[serde(rename = "doubleValue")]
    double_value: f64,
}

/// The `q` quantile of `values` (nearest rank), which are sorted in place.
fn quantile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn timestamp(us: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// A series: a service, and its operation when grouped by operation.
type SeriesKey = (String, Option<String>);

/// The figure for every series (service, or service and operation) with spans in the
/// window, one point per step; steps without spans are left out.
pub fn compute(store: &MemoryStore, q: &MonitorQuery, figure: Figure) -> MetricFamily {
    let start = q.end.saturating_sub(q.lookback);
    let samples = store.red_samples(&q.services, &q.kinds, start, q.end);
    // Step i covers (end - (i+1)·step, end - i·step]; points are listed oldest first.
    let steps = q.lookback.div_ceil(q.step);
    let mut series: BTreeMap<SeriesKey, BTreeMap<u64, Vec<&RedSample>>> = BTreeMap::new();
    for s in &samples {
        let back = (q.end - s.start) / q.step;
        if back >= steps {
            continue;
        }
        let op = q.group_by_operation.then(|| s.operation.clone());
        series
            .entry((s.service.clone(), op))
            .or_default()
            .entry(steps - 1 - back)
            .or_default()
            .push(s);
    }
    let step_s = q.step as f64 / 1e6;
    let metrics = series
        .into_iter()
        .map(|((service, operation), points)| {
            let mut labels = vec![Label {
                name: "service_name",
                value: service,
            }];
            if let Some(op) = operation {
                labels.insert(
                    0,
                    Label {
                        name: "operation",
                        value: op,
                    },
                );
            }
            let metric_points = points
                .into_iter()
                .map(|(i, spans)| {
                    let value = match figure {
                        Figure::Calls => spans.len() as f64 / step_s,
                        Figure::Errors => {
                            spans.iter().filter(|s| s.error).count() as f64 / spans.len() as f64
                        }
                        Figure::Latencies(qt) => {
                            let mut d: Vec<u64> = spans.iter().map(|s| s.duration).collect();
                            quantile(&mut d, qt) as f64 / 1000.0
                        }
                    };
                    Point {
                        gauge_value: Gauge {
                            double_value: value,
                        },
                        timestamp: timestamp(q.end - (steps - 1 - i) * q.step),
                    }
                })
                .collect();
            Metric {
                labels,
                metric_points,
            }
        })
        .collect();
    let (what, help) = match figure {
        Figure::Calls => ("call_rate", "calls/sec".to_owned()),
        Figure::Errors => (
            "error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec".to_owned(),
        ),
        Figure::Latencies(qt) => ("latencies", format!("{qt}th quantile latency, in ms")),
    };
    let (prefix, by) = if q.group_by_operation {
        ("service_operation", "service & operation")
    } else {
        ("service", "service")
    };
    MetricFamily {
        name: format!("{prefix}_{what}"),
        kind: "GAUGE",
        help: format!("{help}, grouped by {by}"),
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_read_as_jaegers() {
        let q = parse(
            &p(&[
                ("service", "order-service"),
                ("service", "payment-service"),
                ("groupByOperation", "true"),
                ("endTs", "1700000000000"),
                ("lookback", "600000"),
                ("step", "60000"),
                ("spanKind", "SPAN_KIND_CLIENT"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(q.services, ["order-service", "payment-service"]);
        assert!(q.group_by_operation);
        assert_eq!(q.kinds, [SpanKind::Client]);
        assert_eq!(
            (q.end, q.lookback, q.step),
            (1_700_000_000_000_000, 600_000_000, 60_000_000)
        );
        assert_eq!(
            parse(&p(&[("service", "a")]), 0).unwrap().kinds,
            [SpanKind::Server]
        );
        assert!(parse(&p(&[]), 0).unwrap_err().contains("service"));
        assert!(
            parse(&p(&[("service", "a"), ("step", "10")]), 0)
                .unwrap_err()
                .contains("minstep")
        );
        assert_eq!(parse_quantile(&p(&[("quantile", "0.95")])), Ok(0.95));
        assert!(parse_quantile(&p(&[("quantile", "1.5")])).is_err());
    }

    #[test]
    fn nearest_rank_quantiles() {
        let mut d = vec![50, 10, 40, 20, 30];
        assert_eq!(quantile(&mut d, 0.5), 30);
        assert_eq!(quantile(&mut d, 0.95), 50);
        assert_eq!(quantile(&mut d, 0.01), 10);
    }
}
