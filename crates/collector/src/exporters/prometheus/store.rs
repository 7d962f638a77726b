//! The exporter's series store: OTLP points become Prometheus series keyed by (family name,
//! labels), updated on every consume (deltas accumulated into cumulative values) and
//! rendered on every scrape, as Prometheus text 0.0.4 or OpenMetrics 1.0.

use super::names::{label_name, metric_name};
use crate::pdata::attributes;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ResourceMetrics, exemplar, metric::Data, number_data_point,
};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// How OTLP becomes Prometheus, from the exporter's config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub const_labels: Vec<(String, String)>,
    pub resource_to_labels: bool,
    pub add_suffixes: bool,
    pub expiration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug)]
struct StoredExemplar {
    trace_id: String,
    span_id: String,
    value: f64,
    time_nanos: u64,
}

#[derive(Clone, Debug)]
enum Value {
    Number {
        value: f64,
        exemplar: Option<StoredExemplar>,
    },
    Histogram {
        bounds: Vec<f64>,
        /// Per bucket (not cumulative); the last is the +Inf bucket.
        counts: Vec<u64>,
        sum: f64,
        count: u64,
        exemplars: Vec<Option<StoredExemplar>>,
    },
    Summary {
        quantiles: Vec<(f64, f64)>,
        sum: f64,
        count: u64,
    },
}

#[derive(Clone, Debug)]
struct Series {
    value: Value,
    time_nanos: u64,
    updated: Instant,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    help: String,
    series: BTreeMap<Labels, Series>,
}

#[derive(Default, Debug)]
pub struct Store {
    families: BTreeMap<String, Family>,
}

fn exemplar_of(e: &Exemplar) -> Option<StoredExemplar> {
    if e.trace_id.is_empty() && e.span_id.is_empty() {
        return None;
    }
    let value = match e.value {
        Some(exemplar::Value::AsDouble(d)) => d,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => return None,
    };
    Some(StoredExemplar {
        trace_id: hex::encode(&e.trace_id),
        span_id: hex::encode(&e.span_id),
        value,
        time_nanos: e.time_unix_nano,
    })
}

/// Adds `attrs` as labels; keys that sanitise to the same name are joined with `;`
/// (in key order), as the specification asks.
fn add_attributes(labels: &mut Labels, attrs: &[KeyValue]) {
    let mut sorted: Vec<&KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut added: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let Some(v) = &kv.value else { continue };
        let text = attributes::as_text(v);
        if text.is_empty() {
            continue;
        }
        added
            .entry(label_name(&kv.key))
            .and_modify(|e| {
                e.push(';');
                e.push_str(&text);
            })
            .or_insert(text);
    }
    labels.extend(added);
}

const FLAG_NO_RECORDED_VALUE: u32 = 1;

impl Store {
    /// Takes in one batch of metrics.
    pub fn ingest(&mut self, settings: &Settings, resource_metrics: &[ResourceMetrics]) {
        let now = Instant::now();
        for rm in resource_metrics {
            let empty = Vec::new();
            let res = rm.resource.as_ref().map_or(&empty, |r| &r.attributes);
            let service = attributes::get_text(res, "service.name");
            let job = match (attributes::get_text(res, "service.namespace"), &service) {
                (Some(ns), Some(s)) if !ns.is_empty() => Some(format!("{ns}/{s}")),
                (_, s) => s.clone(),
            };
            let instance = attributes::get_text(res, "service.instance.id");
            let mut base = Labels::new();
            if settings.resource_to_labels {
                add_attributes(&mut base, res);
            }
            let identity = |labels: &mut Labels| {
                if let Some(j) = job.clone().filter(|j| !j.is_empty()) {
                    labels.insert("job".into(), j);
                }
                if let Some(i) = instance.clone().filter(|i| !i.is_empty()) {
                    labels.insert("instance".into(), i);
                }
                for (k, v) in &settings.const_labels {
                    labels.insert(k.clone(), v.clone());
                }
            };
            self.target_info(res, &identity, now);
            for sm in &rm.scope_metrics {
                let mut scope_labels = base.clone();
                add_scope(&mut scope_labels, sm.scope.as_ref());
                for m in &sm.metrics {
                    let Some(data) = &m.data else { continue };
                    let (kind, delta) = match data {
                        Data::Gauge(_) => (Kind::Gauge, false),
                        Data::Sum(s) => (
                            if s.is_monotonic {
                                Kind::Counter
                            } else {
                                Kind::Gauge
                            },
                            s.aggregation_temporality == AggregationTemporality::Delta as i32,
                        ),
                        Data::Histogram(h) => (
                            Kind::Histogram,
                            h.aggregation_temporality == AggregationTemporality::Delta as i32,
                        ),
                        Data::Summary(_) => (Kind::Summary, false),
                        // Not translated (see the module doc): no classic Prometheus form.
                        Data::ExponentialHistogram(_) => continue,
                    };
                    let name = metric_name(
                        &m.name,
                        &m.unit,
                        &settings.namespace,
                        kind == Kind::Counter,
                        kind == Kind::Gauge,
                        settings.add_suffixes,
                    );
                    // promtool and Prometheus UIs want a HELP line; without a description
                    // the OTLP name is the most helpful text there is.
                    let help = if m.description.is_empty() {
                        &m.name
                    } else {
                        &m.description
                    };
                    let family = self.family(name, kind, help);
                    let point_labels = |attrs: &[KeyValue]| {
                        let mut l = scope_labels.clone();
                        add_attributes(&mut l, attrs);
                        identity(&mut l);
                        l
                    };
                    match data {
                        Data::Gauge(g) => {
                            for p in &g.data_points {
                                if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                                    continue;
                                }
                                family.number(
                                    point_labels(&p.attributes),
                                    number(&p.value),
                                    false,
                                    p.time_unix_nano,
                                    &p.exemplars,
                                    now,
                                );
                            }
                        }
                        Data::Sum(s) => {
                            for p in &s.data_points {
                                if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                                    continue;
                                }
                                family.number(
                                    point_labels(&p.attributes),
                                    number(&p.value),
                                    delta,
                                    p.time_unix_nano,
                                    &p.exemplars,
                                    now,
                                );
                            }
                        }
                        Data::Histogram(h) => {
                            for p in &h.data_points {
                                if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                                    continue;
                                }
                                family.histogram(point_labels(&p.attributes), p, delta, now);
                            }
                        }
                        Data::Summary(s) => {
                            for p in &s.data_points {
                                if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                                    continue;
                                }
                                let value = Value::Summary {
                                    quantiles: p
                                        .quantile_values
                                        .iter()
                                        .map(|q| (q.quantile, q.value))
                                        .collect(),
                                    sum: p.sum,
                                    count: p.count,
                                };
                                family.series.insert(
                                    point_labels(&p.attributes),
                                    Series {
                                        value,
                                        time_nanos: p.time_unix_nano,
                                        updated: now,
                                    },
                                );
                            }
                        }
                        Data::ExponentialHistogram(_) => {}
                    }
                }
            }
        }
    }

    fn family(&mut self, name: String, kind: Kind, help: &str) -> &mut Family {
        let f = self.families.entry(name).or_insert_with(|| Family {
            kind,
            help: help.to_string(),
            series: BTreeMap::new(),
        });
        if f.kind != kind {
            // Two OTLP metrics mapped to one name with different types: the newest wins,
            // since one Prometheus family cannot hold both.
            f.kind = kind;
            f.series.clear();
        }
        if !help.is_empty() {
            f.help = help.to_string();
        }
        f
    }

    /// `target_info`: one series per resource with its attributes (minus those already in
    /// job and instance).
    fn target_info(&mut self, res: &[KeyValue], identity: &dyn Fn(&mut Labels), now: Instant) {
        let rest: Vec<KeyValue> = res
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .cloned()
            .collect();
        if rest.is_empty() {
            return;
        }
        let mut labels = Labels::new();
        add_attributes(&mut labels, &rest);
        identity(&mut labels);
        let f = self.family("target_info".into(), Kind::Gauge, "Target metadata");
        f.series.insert(
            labels,
            Series {
                value: Value::Number {
                    value: 1.0,
                    exemplar: None,
                },
                time_nanos: 0,
                updated: now,
            },
        );
    }

    /// Drops series not updated within `expiration`.
    pub fn expire(&mut self, expiration: Duration) {
        for f in self.families.values_mut() {
            f.series.retain(|_, s| s.updated.elapsed() < expiration);
        }
        self.families.retain(|_, f| !f.series.is_empty());
    }

    #[cfg(test)]
    pub fn series_count(&self) -> usize {
        self.families.values().map(|f| f.series.len()).sum()
    }

    /// The exposition: Prometheus text 0.0.4, or OpenMetrics 1.0 (with exemplars and
    /// `# EOF`) when `open_metrics`.
    pub fn render(&self, open_metrics: bool, timestamps: bool) -> String {
        let mut out = String::new();
        for (name, f) in &self.families {
            let family_name = if f.kind == Kind::Counter && !open_metrics {
                format!("{name}_total")
            } else {
                name.clone()
            };
            if !f.help.is_empty() {
                let _ = writeln!(out, "# HELP {family_name} {}", escape_help(&f.help));
            }
            let _ = writeln!(out, "# TYPE {family_name} {}", f.kind.as_str());
            for (labels, s) in &f.series {
                let ts = timestamps.then_some(s.time_nanos).filter(|t| *t > 0);
                match &s.value {
                    Value::Number { value, exemplar } => {
                        let sample = if f.kind == Kind::Counter {
                            format!("{name}_total")
                        } else {
                            name.clone()
                        };
                        line(
                            &mut out,
                            &sample,
                            labels,
                            None,
                            *value,
                            ts,
                            exemplar
                                .as_ref()
                                .filter(|_| open_metrics && f.kind == Kind::Counter),
                            open_metrics,
                        );
                    }
                    Value::Histogram {
                        bounds,
                        counts,
                        sum,
                        count,
                        exemplars,
                    } => {
                        let mut cumulative = 0;
                        for (i, c) in counts.iter().enumerate() {
                            cumulative += c;
                            let le = bounds
                                .get(i)
                                .map_or("+Inf".to_string(), |b| format_float(*b));
                            let ex = exemplars
                                .get(i)
                                .and_then(|e| e.as_ref())
                                .filter(|_| open_metrics);
                            line(
                                &mut out,
                                &format!("{name}_bucket"),
                                labels,
                                Some(("le", &le)),
                                cumulative as f64,
                                ts,
                                ex,
                                open_metrics,
                            );
                        }
                        line(
                            &mut out,
                            &format!("{name}_sum"),
                            labels,
                            None,
                            *sum,
                            ts,
                            None,
                            open_metrics,
                        );
                        line(
                            &mut out,
                            &format!("{name}_count"),
                            labels,
                            None,
                            *count as f64,
                            ts,
                            None,
                            open_metrics,
                        );
                    }
                    Value::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        for (q, v) in quantiles {
                            line(
                                &mut out,
                                name,
                                labels,
                                Some(("quantile", &format_float(*q))),
                                *v,
                                ts,
                                None,
                                open_metrics,
                            );
                        }
                        line(
                            &mut out,
                            &format!("{name}_sum"),
                            labels,
                            None,
                            *sum,
                            ts,
                            None,
                            open_metrics,
                        );
                        line(
                            &mut out,
                            &format!("{name}_count"),
                            labels,
                            None,
                            *count as f64,
                            ts,
                            None,
                            open_metrics,
                        );
                    }
                }
            }
        }
        if open_metrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

fn add_scope(labels: &mut Labels, scope: Option<&InstrumentationScope>) {
    if let Some(s) = scope {
        if !s.name.is_empty() {
            labels.insert("otel_scope_name".into(), s.name.clone());
        }
        if !s.version.is_empty() {
            labels.insert("otel_scope_version".into(), s.version.clone());
        }
    }
}

fn number(v: &Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        Some(number_data_point::Value::AsDouble(d)) => *d,
        None => 0.0,
    }
}

impl Family {
    fn number(
        &mut self,
        labels: Labels,
        value: f64,
        delta: bool,
        time_nanos: u64,
        exemplars: &[Exemplar],
        now: Instant,
    ) {
        let exemplar = exemplars.iter().rev().find_map(exemplar_of);
        let entry = self.series.entry(labels).or_insert_with(|| Series {
            value: Value::Number {
                value: 0.0,
                exemplar: None,
            },
            time_nanos,
            updated: now,
        });
        let previous = match &entry.value {
            Value::Number { value, exemplar } => Some((*value, exemplar.clone())),
            _ => None,
        };
        let (value, exemplar) = match previous {
            Some((old, old_ex)) if delta => (old + value, exemplar.or(old_ex)),
            Some((_, old_ex)) => (value, exemplar.or(old_ex)),
            None => (value, exemplar),
        };
        *entry = Series {
            value: Value::Number { value, exemplar },
            time_nanos,
            updated: now,
        };
    }

    fn histogram(
        &mut self,
        labels: Labels,
        p: &opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint,
        delta: bool,
        now: Instant,
    ) {
        let bounds = p.explicit_bounds.clone();
        let mut counts = p.bucket_counts.clone();
        // OTLP allows no buckets at all (count and sum only): that is one +Inf bucket.
        counts.resize(bounds.len() + 1, 0);
        if p.bucket_counts.is_empty() {
            counts[bounds.len()] = p.count;
        }
        let mut exemplars: Vec<Option<StoredExemplar>> = vec![None; counts.len()];
        for e in &p.exemplars {
            if let Some(ex) = exemplar_of(e) {
                let i = bounds
                    .iter()
                    .position(|b| ex.value <= *b)
                    .unwrap_or(bounds.len());
                exemplars[i] = Some(ex);
            }
        }
        let sum = p.sum.unwrap_or(0.0);
        let mut value = Value::Histogram {
            bounds,
            counts,
            sum,
            count: p.count,
            exemplars,
        };
        if let Some(old) = self.series.get(&labels)
            && let (
                Value::Histogram {
                    bounds: ob,
                    counts: oc,
                    sum: os,
                    count: on,
                    exemplars: oe,
                },
                Value::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                    exemplars,
                },
            ) = (&old.value, &mut value)
            && ob == bounds
        {
            if delta {
                counts.iter_mut().zip(oc).for_each(|(n, o)| *n += o);
                *sum += os;
                *count += on;
            }
            // Keep the last known exemplar of buckets this point brought none for.
            for (n, o) in exemplars.iter_mut().zip(oe) {
                if n.is_none() {
                    n.clone_from(o);
                }
            }
        }
        self.series.insert(
            labels,
            Series {
                value,
                time_nanos: p.time_unix_nano,
                updated: now,
            },
        );
    }
}

/// Floats as Prometheus writes them: shortest round-trip form, `+Inf`, `-Inf`, `NaN`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[allow(clippy::too_many_arguments)]
fn line(
    out: &mut String,
    name: &str,
    labels: &Labels,
    extra: Option<(&str, &str)>,
    value: f64,
    time_nanos: Option<u64>,
    exemplar: Option<&StoredExemplar>,
    open_metrics: bool,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra)
        {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_value(v));
        }
        out.push('}');
    }
    let _ = write!(out, " {}", format_float(value));
    if let Some(t) = time_nanos {
        if open_metrics {
            let _ = write!(out, " {}", t as f64 / 1e9);
        } else {
            let _ = write!(out, " {}", t / 1_000_000);
        }
    }
    if let Some(e) = exemplar {
        let _ = write!(
            out,
            " # {{trace_id=\"{}\",span_id=\"{}\"}} {}",
            e.trace_id,
            e.span_id,
            format_float(e.value)
        );
        if e.time_nanos > 0 {
            let _ = write!(out, " {}", e.time_nanos as f64 / 1e9);
        }
    }
    out.push('\n');
}
