//! The collector's own metrics, named as the Go collector names them
//! (`otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"}`, ...), served as
//! Prometheus text on `service.telemetry.metrics.address`, so dashboards written for the Go
//! collector work unchanged.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Labels = Vec<(String, String)>;

#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);
impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);
impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed bounds (used for batch send sizes).
#[derive(Clone)]
pub struct Histogram(Arc<HistogramState>);
struct HistogramState {
    bounds: Vec<f64>,
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum: Mutex<f64>,
}
impl Histogram {
    pub fn record(&self, v: f64) {
        let s = &self.0;
        if let Some(i) = s.bounds.iter().position(|b| v <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        s.count.fetch_add(1, Ordering::Relaxed);
        *s.sum.lock().expect("histogram lock") += v;
    }
}

enum Instrument {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

struct Family {
    help: &'static str,
    kind: &'static str,
    series: BTreeMap<Labels, Instrument>,
}

pub struct SelfTelemetry {
    families: Mutex<BTreeMap<&'static str, Family>>,
    started: Instant,
}

impl Default for SelfTelemetry {
    fn default() -> Self {
        SelfTelemetry {
            families: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        }
    }
}

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl SelfTelemetry {
    fn instrument<T>(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        l: &[(&str, &str)],
        make: impl FnOnce() -> Instrument,
        pick: impl FnOnce(&Instrument) -> Option<T>,
    ) -> T {
        let mut fams = self.families.lock().expect("telemetry lock");
        let fam = fams.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        let inst = fam.series.entry(labels(l)).or_insert_with(make);
        pick(inst).unwrap_or_else(|| panic!("metric {name} registered with two kinds"))
    }

    /// A counter; the name should end in `_total`.
    pub fn counter(&self, name: &'static str, help: &'static str, l: &[(&str, &str)]) -> Counter {
        self.instrument(
            name,
            help,
            "counter",
            l,
            || Instrument::Counter(Counter::default()),
            |i| match i {
                Instrument::Counter(c) => Some(c.clone()),
                _ => None,
            },
        )
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, l: &[(&str, &str)]) -> Gauge {
        self.instrument(
            name,
            help,
            "gauge",
            l,
            || Instrument::Gauge(Gauge::default()),
            |i| match i {
                Instrument::Gauge(g) => Some(g.clone()),
                _ => None,
            },
        )
    }

    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        l: &[(&str, &str)],
        bounds: &[f64],
    ) -> Histogram {
        self.instrument(
            name,
            help,
            "histogram",
            l,
            || {
                Instrument::Histogram(Histogram(Arc::new(HistogramState {
                    bounds: bounds.to_vec(),
                    buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
                    count: AtomicU64::new(0),
                    sum: Mutex::new(0.0),
                })))
            },
            |i| match i {
                Instrument::Histogram(h) => Some(h.clone()),
                _ => None,
            },
        )
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_process(&mut out);
        let fams = self.families.lock().expect("telemetry lock");
        for (name, fam) in fams.iter() {
            let _ = writeln!(out, "# HELP {name} {}", fam.help);
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind);
            for (l, inst) in &fam.series {
                match inst {
                    Instrument::Counter(c) => {
                        let _ = writeln!(out, "{name}{} {}", fmt_labels(l, None), c.get());
                    }
                    Instrument::Gauge(g) => {
                        let _ = writeln!(out, "{name}{} {}", fmt_labels(l, None), g.get());
                    }
                    Instrument::Histogram(h) => {
                        let s = &h.0;
                        let mut cum = 0;
                        for (b, n) in s.bounds.iter().zip(&s.buckets) {
                            cum += n.load(Ordering::Relaxed);
                            let le = b.to_string();
                            let _ =
                                writeln!(out, "{name}_bucket{} {cum}", fmt_labels(l, Some(&le)));
                        }
                        let count = s.count.load(Ordering::Relaxed);
                        let _ =
                            writeln!(out, "{name}_bucket{} {count}", fmt_labels(l, Some("+Inf")));
                        let sum = *s.sum.lock().expect("histogram lock");
                        let _ = writeln!(out, "{name}_sum{} {sum}", fmt_labels(l, None));
                        let _ = writeln!(out, "{name}_count{} {count}", fmt_labels(l, None));
                    }
                }
            }
        }
        out
    }

    fn render_process(&self, out: &mut String) {
        let uptime = self.started.elapsed().as_secs_f64();
        let _ = writeln!(
            out,
            "# HELP otelcol_process_uptime_seconds_total Uptime of the process"
        );
        let _ = writeln!(out, "# TYPE otelcol_process_uptime_seconds_total counter");
        let _ = writeln!(out, "otelcol_process_uptime_seconds_total {uptime}");
        if let Some((rss, cpu)) = process_stats() {
            let _ = writeln!(
                out,
                "# HELP otelcol_process_memory_rss_bytes Total physical memory (resident set size)"
            );
            let _ = writeln!(out, "# TYPE otelcol_process_memory_rss_bytes gauge");
            let _ = writeln!(out, "otelcol_process_memory_rss_bytes {rss}");
            let _ = writeln!(
                out,
                "# HELP otelcol_process_cpu_seconds_total Total CPU user and system time in seconds"
            );
            let _ = writeln!(out, "# TYPE otelcol_process_cpu_seconds_total counter");
            let _ = writeln!(out, "otelcol_process_cpu_seconds_total {cpu}");
        }
    }
}

fn fmt_labels(l: &Labels, le: Option<&str>) -> String {
    if l.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident memory of this process in bytes (one small read of /proc/self/statm).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the running system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

/// Resident set size in bytes and CPU seconds, from /proc (Linux).
pub fn process_stats() -> Option<(u64, f64)> {
    let rss = resident_bytes()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((rss, (utime + stime) / 100.0))
}

/// Per-component counters a receiver uses for one signal and transport.
#[derive(Clone)]
pub struct ReceiverMetrics {
    pub accepted: Counter,
    pub refused: Counter,
}

impl ReceiverMetrics {
    pub fn new(
        t: &SelfTelemetry,
        receiver: &str,
        transport: &str,
        signal: crate::pdata::Signal,
    ) -> Self {
        let l = [("receiver", receiver), ("transport", transport)];
        let (acc, refu): (&'static str, &'static str) = match signal {
            crate::pdata::Signal::Traces => (
                "otelcol_receiver_accepted_spans_total",
                "otelcol_receiver_refused_spans_total",
            ),
            crate::pdata::Signal::Metrics => (
                "otelcol_receiver_accepted_metric_points_total",
                "otelcol_receiver_refused_metric_points_total",
            ),
            crate::pdata::Signal::Logs => (
                "otelcol_receiver_accepted_log_records_total",
                "otelcol_receiver_refused_log_records_total",
            ),
        };
        ReceiverMetrics {
            accepted: t.counter(
                acc,
                "Number of items successfully pushed into the pipeline.",
                &l,
            ),
            refused: t.counter(
                refu,
                "Number of items that could not be pushed into the pipeline.",
                &l,
            ),
        }
    }
}

/// Per-exporter counters and queue gauges for one signal.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub sent: Counter,
    pub send_failed: Counter,
    pub enqueue_failed: Counter,
    pub queue_size: Gauge,
    pub queue_capacity: Gauge,
}

impl ExporterMetrics {
    pub fn new(t: &SelfTelemetry, exporter: &str, signal: crate::pdata::Signal) -> Self {
        use crate::pdata::Signal::*;
        let l = [("exporter", exporter)];
        let (sent, failed, enq): (&'static str, &'static str, &'static str) = match signal {
            Traces => (
                "otelcol_exporter_sent_spans_total",
                "otelcol_exporter_send_failed_spans_total",
                "otelcol_exporter_enqueue_failed_spans_total",
            ),
            Metrics => (
                "otelcol_exporter_sent_metric_points_total",
                "otelcol_exporter_send_failed_metric_points_total",
                "otelcol_exporter_enqueue_failed_metric_points_total",
            ),
            Logs => (
                "otelcol_exporter_sent_log_records_total",
                "otelcol_exporter_send_failed_log_records_total",
                "otelcol_exporter_enqueue_failed_log_records_total",
            ),
        };
        let ql = [("exporter", exporter), ("data_type", signal.as_str())];
        ExporterMetrics {
            sent: t.counter(
                sent,
                "Number of items successfully sent to destination.",
                &l,
            ),
            send_failed: t.counter(
                failed,
                "Number of items in failed attempts to send to destination.",
                &l,
            ),
            enqueue_failed: t.counter(
                enq,
                "Number of items failed to be added to the sending queue.",
                &l,
            ),
            queue_size: t.gauge(
                "otelcol_exporter_queue_size",
                "Current size of the retry queue (in the unit of sending_queue.sizer, batches by default).",
                &ql,
            ),
            queue_capacity: t.gauge(
                "otelcol_exporter_queue_capacity",
                "Fixed capacity of the retry queue (in the unit of sending_queue.sizer, batches by default).",
                &ql,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_go_collector_names_with_labels() {
        let t = SelfTelemetry::default();
        let m = ReceiverMetrics::new(&t, "otlp", "grpc", crate::pdata::Signal::Traces);
        m.accepted.add(3);
        let h = t.histogram(
            "otelcol_processor_batch_batch_send_size",
            "Batch sizes",
            &[("processor", "batch")],
            &[10.0, 100.0],
        );
        h.record(50.0);
        let text = t.render();
        assert!(
            text.contains(
                "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "otelcol_processor_batch_batch_send_size_bucket{processor=\"batch\",le=\"100\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("otelcol_process_memory_rss_bytes "), "{text}");
    }
}
