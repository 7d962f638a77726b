//! The `spanmetrics` connector, after the Go collector-contrib's `spanmetricsconnector`:
//! consumes spans at the end of a traces pipeline and produces RED metrics into a metrics
//! pipeline, with the Go connector's names, so dashboards built on it work unchanged:
//!
//! - `traces.span.metrics.calls`: monotonic Sum of spans (Prometheus:
//!   `traces_span_metrics_calls_total`);
//! - `traces.span.metrics.duration`: explicit-bucket Histogram of span durations in `ms`
//!   (Prometheus: `traces_span_metrics_duration_milliseconds_bucket`).
//!
//! Every data point carries `service.name`, `span.name`, `span.kind` (`SPAN_KIND_SERVER`,
//! ...) and `status.code` (`STATUS_CODE_ERROR`, ...), plus the configured `dimensions`,
//! looked up in the span's attributes, then its resource's, then the dimension's
//! `default` (a dimension with neither is left out). Series are grouped per resource
//! (keyed by `resource_metrics_key_attributes`, default all resource attributes); the
//! output resource carries the spans' `service.name` (all their resource attributes with
//! `add_resource_attributes: true`), and the scope is `spanmetricsconnector`.
//!
//! Metrics are emitted every `metrics_flush_interval` (60s, Go's default; the lab sets
//! less) by a task started at build, and once more at shutdown. With
//! `aggregation_cardinality_limit: N`, a resource keeps at most N series; spans of further
//! attribute sets are counted in one series whose only attribute is
//! `otel.metric.overflow=true`. Exemplars (trace and span id of up to
//! `max_per_data_point` spans per series and flush) go on the histogram points.
//!
//! Not supported (refused as unknown keys): `events`, `calls_dimensions`,
//! `histogram.dimensions`, `include_instrumentation_scope`; `histogram.exponential` is
//! refused with a message.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::GoDuration;
use crate::pdata::attributes;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, ConnectorFactory, Decoded};
use async_trait::async_trait;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, exemplar, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

pub const FACTORY: ConnectorFactory = ConnectorFactory {
    kind: "spanmetrics",
    description: "Derives RED metrics (calls, duration histogram) from spans",
    pairs: &[(Signal::Traces, Signal::Metrics)],
    validate: registry::validate::<SpanMetricsConfig>,
    build,
};

/// The Go connector's default buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];

const SCOPE_NAME: &str = "spanmetricsconnector";
const OVERFLOW_KEY: &str = "otel.metric.overflow";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dimension {
    /// Attribute name, looked up in the span's then the resource's attributes. Required.
    pub name: String,
    /// Value used when neither has the attribute; without it the dimension is left out.
    pub default: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistogramConfig {
    /// Emit no duration histogram at all. Default false.
    pub disable: bool,
    /// Unit of the duration histogram: ms or s. Default ms.
    pub unit: Option<String>,
    /// Explicit bucket boundaries. Default: the Go defaults 2ms ... 15s.
    pub explicit: Option<ExplicitBuckets>,
    /// Exponential histograms are not supported; setting this is an error.
    pub exponential: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplicitBuckets {
    /// Upper bounds as durations (`2ms`, `1s`), increasing. Default: the Go defaults.
    pub buckets: Vec<GoDuration>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExemplarsConfig {
    /// Attach exemplars (trace id, span id, duration) to histogram points. Default false.
    pub enabled: bool,
    /// Exemplars kept per data point between two flushes. Default 5.
    pub max_per_data_point: usize,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            enabled: false,
            max_per_data_point: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// Extra dimensions on top of service.name, span.name, span.kind, status.code.
    /// Default none.
    pub dimensions: Vec<Dimension>,
    /// Default dimensions to leave out (e.g. `status.code`). Default none.
    pub exclude_dimensions: Vec<String>,
    /// The duration histogram. Default: explicit buckets in ms, Go's defaults.
    pub histogram: HistogramConfig,
    /// Exemplars on the histogram. Default disabled.
    pub exemplars: ExemplarsConfig,
    /// AGGREGATION_TEMPORALITY_CUMULATIVE or AGGREGATION_TEMPORALITY_DELTA. Default
    /// cumulative.
    pub aggregation_temporality: String,
    /// How often metrics are emitted. Default 60s (Go's).
    pub metrics_flush_interval: GoDuration,
    /// Series not updated for this long are no longer emitted; 0 keeps them forever.
    /// Default 0.
    pub metrics_expiration: GoDuration,
    /// Prefix of the metric names. Default `traces.span.metrics`.
    pub namespace: String,
    /// Most series per resource; further attribute sets go to the overflow series.
    /// 0 = no limit. Default 0.
    pub aggregation_cardinality_limit: usize,
    /// Resource attributes that tell resources apart (keeps counters stable when other
    /// attributes change across restarts). Default: all resource attributes.
    pub resource_metrics_key_attributes: Vec<String>,
    /// Copy all resource attributes of the spans to the output resource instead of only
    /// service.name. Default false.
    pub add_resource_attributes: bool,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        SpanMetricsConfig {
            dimensions: Vec::new(),
            exclude_dimensions: Vec::new(),
            histogram: HistogramConfig::default(),
            exemplars: ExemplarsConfig::default(),
            aggregation_temporality: "AGGREGATION_TEMPORALITY_CUMULATIVE".into(),
            metrics_flush_interval: GoDuration::secs(60),
            metrics_expiration: GoDuration::default(),
            namespace: "traces.span.metrics".into(),
            aggregation_cardinality_limit: 0,
            resource_metrics_key_attributes: Vec::new(),
            add_resource_attributes: false,
        }
    }
}

const DEFAULT_DIMENSIONS: [&str; 4] = ["service.name", "span.name", "span.kind", "status.code"];

impl ComponentConfig for SpanMetricsConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let mut seen: Vec<&str> = DEFAULT_DIMENSIONS.to_vec();
        for d in &self.dimensions {
            if d.name.is_empty() {
                v.push(("dimensions", "a dimension needs a name".into()));
            } else if seen.contains(&d.name.as_str()) {
                v.push(("dimensions", format!("duplicate dimension name {}", d.name)));
            } else {
                seen.push(&d.name);
            }
        }
        for e in &self.exclude_dimensions {
            if !DEFAULT_DIMENSIONS.contains(&e.as_str()) {
                v.push((
                    "exclude_dimensions",
                    format!(
                        "{e} is not a default dimension ({})",
                        DEFAULT_DIMENSIONS.join(", ")
                    ),
                ));
            }
        }
        if !matches!(
            self.aggregation_temporality.as_str(),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" | "AGGREGATION_TEMPORALITY_DELTA"
        ) {
            v.push((
                "aggregation_temporality",
                format!(
                    "must be AGGREGATION_TEMPORALITY_CUMULATIVE or AGGREGATION_TEMPORALITY_DELTA, found {:?}",
                    self.aggregation_temporality
                ),
            ));
        }
        if self.metrics_flush_interval.0.is_zero() {
            v.push(("metrics_flush_interval", "must be greater than 0".into()));
        }
        if self.histogram.exponential.is_some() {
            v.push((
                "histogram",
                "exponential histograms are not supported; use explicit buckets".into(),
            ));
        }
        if !matches!(
            self.histogram.unit.as_deref(),
            None | Some("ms") | Some("s")
        ) {
            v.push((
                "histogram",
                format!("unit must be ms or s, found {:?}", self.histogram.unit),
            ));
        }
        if let Some(e) = &self.histogram.explicit
            && e.buckets.windows(2).any(|w| w[0] >= w[1])
        {
            v.push((
                "histogram",
                "explicit buckets must be strictly increasing".into(),
            ));
        }
        if self.exemplars.enabled && self.exemplars.max_per_data_point == 0 {
            v.push(("exemplars", "max_per_data_point must be at least 1".into()));
        }
        v
    }
}

fn build(
    decoded: &Decoded,
    ctx: BuildContext,
    _from: Signal,
    _to: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: SpanMetricsConfig = registry::typed::<SpanMetricsConfig>(decoded).clone();
    let connector = Arc::new(SpanMetrics::new(cfg, next));
    connector.start_flushing(ctx.id.to_string());
    Ok(connector)
}

/// One attribute set's aggregates.
struct Series {
    attributes: Vec<KeyValue>,
    calls: u64,
    bucket_counts: Vec<u64>,
    sum: f64,
    min: f64,
    max: f64,
    exemplars: Vec<Exemplar>,
    start_time: u64,
    last_update: Instant,
}

struct ResourceSeries {
    resource: Resource,
    series: BTreeMap<String, Series>,
}

#[derive(Default)]
struct State {
    resources: HashMap<String, ResourceSeries>,
    /// Delta temporality: when the current interval started.
    last_flush: u64,
}

pub struct SpanMetrics {
    cfg: SpanMetricsConfig,
    /// Bucket bounds in the histogram's unit.
    bounds: Vec<f64>,
    /// Nanoseconds per histogram unit.
    unit_nanos: f64,
    unit: &'static str,
    delta: bool,
    state: Mutex<State>,
    next: SharedConsumer,
    stop: watch::Sender<bool>,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

/// A stable text key for an attribute list (order matters; ours is fixed by config).
fn key_of(attrs: &[KeyValue]) -> String {
    let mut k = String::new();
    for kv in attrs {
        k.push_str(&kv.key);
        k.push('\u{1}');
        if let Some(v) = &kv.value {
            k.push_str(&format!("{:?}", v.value));
        }
        k.push('\u{2}');
    }
    k
}

impl SpanMetrics {
    pub fn new(cfg: SpanMetricsConfig, next: SharedConsumer) -> SpanMetrics {
        let (unit, unit_nanos) = match cfg.histogram.unit.as_deref() {
            Some("s") => ("s", 1e9),
            _ => ("ms", 1e6),
        };
        let bounds = match &cfg.histogram.explicit {
            Some(e) if !e.buckets.is_empty() => e
                .buckets
                .iter()
                .map(|d| d.0.as_nanos() as f64 / unit_nanos)
                .collect(),
            _ => DEFAULT_BUCKETS_MS
                .iter()
                .map(|ms| ms * 1e6 / unit_nanos)
                .collect(),
        };
        SpanMetrics {
            delta: cfg.aggregation_temporality == "AGGREGATION_TEMPORALITY_DELTA",
            bounds,
            unit_nanos,
            unit,
            state: Mutex::new(State {
                last_flush: now_nanos(),
                ..State::default()
            }),
            next,
            stop: watch::channel(false).0,
            cfg,
        }
    }

    /// Starts the periodic flush; it stops when `shutdown` is called.
    fn start_flushing(self: &Arc<Self>, id: String) {
        let me = self.clone();
        let mut stop = self.stop.subscribe();
        let every = self
            .cfg
            .metrics_flush_interval
            .0
            .max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = me.flush().await {
                            tracing::warn!(connector = %id, error = %e, "span metrics could not be handed on");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        });
    }

    fn resource_key(&self, resource: &[KeyValue]) -> String {
        if self.cfg.resource_metrics_key_attributes.is_empty() {
            let mut sorted: Vec<&KeyValue> = resource.iter().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            return key_of(&sorted.into_iter().cloned().collect::<Vec<_>>());
        }
        let picked: Vec<KeyValue> = self
            .cfg
            .resource_metrics_key_attributes
            .iter()
            .filter_map(|k| resource.iter().find(|kv| &kv.key == k).cloned())
            .collect();
        key_of(&picked)
    }

    fn dimensions(&self, service: &str, span: &Span, resource: &[KeyValue]) -> Vec<KeyValue> {
        let excluded = |d: &str| self.cfg.exclude_dimensions.iter().any(|e| e == d);
        let mut attrs = Vec::with_capacity(4 + self.cfg.dimensions.len());
        let defaults = [
            ("service.name", service),
            ("span.name", span.name.as_str()),
            ("span.kind", kind_name(span.kind)),
            (
                "status.code",
                status_name(span.status.as_ref().map_or(0, |s| s.code)),
            ),
        ];
        for (k, v) in defaults {
            if !excluded(k) {
                attrs.push(attributes::string_kv(k, v));
            }
        }
        for d in &self.cfg.dimensions {
            let value = attributes::get(&span.attributes, &d.name)
                .or_else(|| attributes::get(resource, &d.name))
                .cloned()
                .or_else(|| d.default.as_ref().map(|s| attributes::string(s.clone())));
            if let Some(value) = value {
                attrs.push(KeyValue {
                    key: d.name.clone(),
                    value: Some(value),
                    ..Default::default()
                });
            }
        }
        attrs
    }

    fn record(&self, state: &mut State, resource: Option<&Resource>, span: &Span) {
        let empty = Vec::new();
        let res_attrs = resource.map_or(&empty, |r| &r.attributes);
        let service = attributes::get_text(res_attrs, "service.name").unwrap_or_default();
        let rkey = self.resource_key(res_attrs);
        let entry = state
            .resources
            .entry(rkey)
            .or_insert_with(|| ResourceSeries {
                resource: Resource {
                    attributes: if self.cfg.add_resource_attributes {
                        res_attrs.clone()
                    } else {
                        vec![attributes::string_kv("service.name", service.clone())]
                    },
                    ..Default::default()
                },
                series: BTreeMap::new(),
            });
        let mut attrs = self.dimensions(&service, span, res_attrs);
        let mut key = key_of(&attrs);
        let limit = self.cfg.aggregation_cardinality_limit;
        if limit > 0 && !entry.series.contains_key(&key) {
            let real = entry
                .series
                .keys()
                .filter(|k| !k.starts_with(OVERFLOW_KEY))
                .count();
            if real >= limit {
                attrs = vec![KeyValue {
                    key: OVERFLOW_KEY.into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }),
                    ..Default::default()
                }];
                key = key_of(&attrs);
            }
        }
        let start_time = if self.delta {
            state.last_flush
        } else {
            now_nanos()
        };
        let nbounds = self.bounds.len();
        let series = entry.series.entry(key).or_insert_with(|| Series {
            attributes: attrs,
            calls: 0,
            bucket_counts: vec![0; nbounds + 1],
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            exemplars: Vec::new(),
            start_time,
            last_update: Instant::now(),
        });
        let duration = span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano) as f64
            / self.unit_nanos;
        series.calls += 1;
        series.last_update = Instant::now();
        if !self.cfg.histogram.disable {
            // Buckets are upper-inclusive, as in OTLP explicit histograms.
            let idx = self
                .bounds
                .iter()
                .position(|b| duration <= *b)
                .unwrap_or(nbounds);
            series.bucket_counts[idx] += 1;
            series.sum += duration;
            series.min = series.min.min(duration);
            series.max = series.max.max(duration);
            if self.cfg.exemplars.enabled
                && series.exemplars.len() < self.cfg.exemplars.max_per_data_point
            {
                series.exemplars.push(Exemplar {
                    time_unix_nano: span.end_time_unix_nano,
                    trace_id: span.trace_id.clone(),
                    span_id: span.span_id.clone(),
                    value: Some(exemplar::Value::AsDouble(duration)),
                    ..Default::default()
                });
            }
        }
    }

    /// Builds the metrics of everything aggregated so far and resets what the temporality
    /// says to reset. Returns `None` when there is nothing to emit.
    pub fn collect(&self) -> Option<Batch> {
        let now = now_nanos();
        let mut state = self.state.lock().expect("spanmetrics lock");
        let expiry = self.cfg.metrics_expiration.0;
        if !expiry.is_zero() {
            for r in state.resources.values_mut() {
                r.series.retain(|_, s| s.last_update.elapsed() < expiry);
            }
            state.resources.retain(|_, r| !r.series.is_empty());
        }
        let temporality = if self.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let mut out = Vec::new();
        for r in state.resources.values_mut() {
            let mut calls = Vec::new();
            let mut durations = Vec::new();
            for s in r.series.values_mut() {
                calls.push(NumberDataPoint {
                    attributes: s.attributes.clone(),
                    start_time_unix_nano: s.start_time,
                    time_unix_nano: now,
                    value: Some(number_data_point::Value::AsInt(s.calls as i64)),
                    ..Default::default()
                });
                if !self.cfg.histogram.disable {
                    let count = s.bucket_counts.iter().sum();
                    durations.push(HistogramDataPoint {
                        attributes: s.attributes.clone(),
                        start_time_unix_nano: s.start_time,
                        time_unix_nano: now,
                        count,
                        sum: Some(s.sum),
                        bucket_counts: s.bucket_counts.clone(),
                        explicit_bounds: self.bounds.clone(),
                        exemplars: std::mem::take(&mut s.exemplars),
                        min: (count > 0).then_some(s.min),
                        max: (count > 0).then_some(s.max),
                        ..Default::default()
                    });
                }
            }
            let mut metrics = vec![Metric {
                name: format!("{}.calls", self.cfg.namespace),
                data: Some(Data::Sum(Sum {
                    data_points: calls,
                    aggregation_temporality: temporality,
                    is_monotonic: true,
                })),
                ..Default::default()
            }];
            if !self.cfg.histogram.disable {
                metrics.push(Metric {
                    name: format!("{}.duration", self.cfg.namespace),
                    unit: self.unit.into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: durations,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                });
            }
            out.push(ResourceMetrics {
                resource: Some(r.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if self.delta {
            // A delta interval starts afresh: series reappear when their spans do.
            state.resources.clear();
            state.last_flush = now;
        }
        (!out.is_empty()).then_some(Batch::Metrics(out))
    }

    /// Emits what is aggregated to the metrics pipeline.
    pub async fn flush(&self) -> Result<(), ConsumeError> {
        match self.collect() {
            Some(batch) => self.next.consume(batch).await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Consumer for SpanMetrics {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.consume_shared(&batch).await
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        let Batch::Traces(rs) = batch else {
            return Err(ConsumeError::permanent(
                "the spanmetrics connector consumes traces only",
            ));
        };
        let mut state = self.state.lock().expect("spanmetrics lock");
        for r in rs {
            for ss in &r.scope_spans {
                for span in &ss.spans {
                    self.record(&mut state, r.resource.as_ref(), span);
                }
            }
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "final span metrics flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Errors;
    use crate::config::Node;
    use crate::processors::attributes::tests::Capture;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn connector(yaml: &str) -> (Arc<SpanMetrics>, Arc<Capture>) {
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        let cfg =
            registry::check::<SpanMetricsConfig>(&node, "connectors::spanmetrics", &mut errors)
                .unwrap_or_else(|| panic!("{:?}", errors.errors));
        let capture = Arc::new(Capture::default());
        (Arc::new(SpanMetrics::new(cfg, capture.clone())), capture)
    }

    fn span(name: &str, kind: i32, error: bool, millis: u64, attrs: Vec<KeyValue>) -> Span {
        Span {
            name: name.into(),
            kind,
            trace_id: vec![7; 16],
            span_id: vec![millis as u8; 8],
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_000_000_000 + millis * 1_000_000,
            status: error.then(|| Status {
                code: 2,
                ..Default::default()
            }),
            attributes: attrs,
            ..Default::default()
        }
    }

    fn traces(service: &str, spans: Vec<Span>) -> Batch {
        Batch::Traces(vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    attributes::string_kv("service.name", service),
                    attributes::string_kv("deployment.environment.name", "lab"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    fn metrics(batch: Batch) -> Vec<ResourceMetrics> {
        match batch {
            Batch::Metrics(m) => m,
            other => panic!("expected metrics, got {other:?}"),
        }
    }

    fn attr(attrs: &[KeyValue], k: &str) -> Option<String> {
        attributes::get_text(attrs, k)
    }

    #[tokio::test]
    async fn counts_calls_and_buckets_durations_per_series() {
        let (c, _) = connector("{}");
        c.consume(traces(
            "order-service",
            vec![
                span("POST /orders", 2, false, 3, vec![]),
                span("POST /orders", 2, false, 120, vec![]),
                span("POST /orders", 2, true, 20_000, vec![]),
            ],
        ))
        .await
        .unwrap();
        let rm = metrics(c.collect().unwrap());
        assert_eq!(rm.len(), 1);
        let res = &rm[0].resource.as_ref().unwrap().attributes;
        assert_eq!(attr(res, "service.name").as_deref(), Some("order-service"));
        assert_eq!(res.len(), 1, "only service.name by default");
        let sm = &rm[0].scope_metrics[0];
        assert_eq!(sm.scope.as_ref().unwrap().name, "spanmetricsconnector");
        let Some(Data::Sum(calls)) = &sm.metrics[0].data else {
            panic!()
        };
        assert_eq!(sm.metrics[0].name, "traces.span.metrics.calls");
        assert!(calls.is_monotonic);
        assert_eq!(
            calls.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let ok = calls
            .data_points
            .iter()
            .find(|p| attr(&p.attributes, "status.code").as_deref() == Some("STATUS_CODE_UNSET"))
            .unwrap();
        assert_eq!(ok.value, Some(number_data_point::Value::AsInt(2)));
        assert_eq!(
            attr(&ok.attributes, "span.kind").as_deref(),
            Some("SPAN_KIND_SERVER")
        );
        assert_eq!(
            attr(&ok.attributes, "span.name").as_deref(),
            Some("POST /orders")
        );
        assert_eq!(
            attr(&ok.attributes, "service.name").as_deref(),
            Some("order-service")
        );

        assert_eq!(sm.metrics[1].name, "traces.span.metrics.duration");
        assert_eq!(sm.metrics[1].unit, "ms");
        let Some(Data::Histogram(h)) = &sm.metrics[1].data else {
            panic!()
        };
        let okh = h
            .data_points
            .iter()
            .find(|p| attr(&p.attributes, "status.code").as_deref() == Some("STATUS_CODE_UNSET"))
            .unwrap();
        assert_eq!(okh.explicit_bounds, DEFAULT_BUCKETS_MS.to_vec());
        // 3ms → (2,4] = bucket 1; 120ms → (100,200] = bucket 7.
        let mut expected = vec![0u64; 17];
        expected[1] = 1;
        expected[7] = 1;
        assert_eq!(okh.bucket_counts, expected);
        assert_eq!(okh.count, 2);
        assert_eq!(okh.sum, Some(123.0));
        let err = h
            .data_points
            .iter()
            .find(|p| attr(&p.attributes, "status.code").as_deref() == Some("STATUS_CODE_ERROR"))
            .unwrap();
        assert_eq!(err.bucket_counts[16], 1, "20s lands in the +Inf bucket");

        // Cumulative: a second collect still reports the totals.
        let rm = metrics(c.collect().unwrap());
        let Some(Data::Sum(calls)) = &rm[0].scope_metrics[0].metrics[0].data else {
            panic!()
        };
        assert_eq!(
            calls
                .data_points
                .iter()
                .map(|p| match p.value {
                    Some(number_data_point::Value::AsInt(i)) => i,
                    _ => 0,
                })
                .sum::<i64>(),
            3
        );
    }

    #[tokio::test]
    async fn configured_dimensions_come_from_span_then_resource_then_default() {
        let (c, _) = connector(
            "dimensions:\n  - name: http.route\n  - name: deployment.environment.name\n  - name: region\n    default: local\n  - name: absent\nhistogram:\n  explicit:\n    buckets: [10ms, 1s]\n",
        );
        c.consume(traces(
            "order-service",
            vec![span(
                "GET",
                2,
                false,
                500,
                vec![attributes::string_kv("http.route", "/orders/{id}")],
            )],
        ))
        .await
        .unwrap();
        let rm = metrics(c.collect().unwrap());
        let Some(Data::Histogram(h)) = &rm[0].scope_metrics[0].metrics[1].data else {
            panic!()
        };
        let p = &h.data_points[0];
        assert_eq!(
            attr(&p.attributes, "http.route").as_deref(),
            Some("/orders/{id}")
        );
        assert_eq!(
            attr(&p.attributes, "deployment.environment.name").as_deref(),
            Some("lab")
        );
        assert_eq!(attr(&p.attributes, "region").as_deref(), Some("local"));
        assert!(attributes::get(&p.attributes, "absent").is_none());
        assert_eq!(p.explicit_bounds, vec![10.0, 1000.0]);
        assert_eq!(p.bucket_counts, vec![0, 1, 0]);
    }

    #[tokio::test]
    async fn overflow_series_takes_attribute_sets_beyond_the_limit() {
        let (c, _) = connector("aggregation_cardinality_limit: 2\nhistogram: {disable: true}\n");
        let spans = (0..5)
            .map(|i| span(&format!("op{i}"), 1, false, 1, vec![]))
            .collect();
        c.consume(traces("svc", spans)).await.unwrap();
        c.consume(traces("svc", vec![span("op0", 1, false, 1, vec![])]))
            .await
            .unwrap();
        let rm = metrics(c.collect().unwrap());
        let metrics = &rm[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1, "histogram disabled");
        let Some(Data::Sum(calls)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(calls.data_points.len(), 3);
        let overflow = calls
            .data_points
            .iter()
            .find(|p| attributes::get(&p.attributes, OVERFLOW_KEY).is_some())
            .expect("an overflow series");
        assert_eq!(overflow.attributes.len(), 1);
        assert_eq!(overflow.value, Some(number_data_point::Value::AsInt(3)));
        let op0 = calls
            .data_points
            .iter()
            .find(|p| attr(&p.attributes, "span.name").as_deref() == Some("op0"))
            .unwrap();
        assert_eq!(
            op0.value,
            Some(number_data_point::Value::AsInt(2)),
            "known series keep counting"
        );
    }

    #[tokio::test]
    async fn exemplars_carry_trace_and_span_ids_and_are_bounded() {
        let (c, _) = connector("exemplars:\n  enabled: true\n  max_per_data_point: 2\n");
        let spans = (1..=4).map(|i| span("GET", 2, false, i, vec![])).collect();
        c.consume(traces("svc", spans)).await.unwrap();
        let rm = metrics(c.collect().unwrap());
        let Some(Data::Histogram(h)) = &rm[0].scope_metrics[0].metrics[1].data else {
            panic!()
        };
        let ex = &h.data_points[0].exemplars;
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].trace_id, vec![7; 16]);
        assert_eq!(ex[0].span_id, vec![1; 8]);
        assert_eq!(ex[1].value, Some(exemplar::Value::AsDouble(2.0)));
        // Exemplars belong to one flush interval.
        let rm = metrics(c.collect().unwrap());
        let Some(Data::Histogram(h)) = &rm[0].scope_metrics[0].metrics[1].data else {
            panic!()
        };
        assert!(h.data_points[0].exemplars.is_empty());
    }

    #[tokio::test]
    async fn delta_temporality_resets_and_shutdown_flushes_to_the_metrics_pipeline() {
        let (c, capture) = connector(
            "aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\nmetrics_flush_interval: 1h\n",
        );
        c.consume(traces("svc", vec![span("GET", 2, false, 1, vec![])]))
            .await
            .unwrap();
        let rm = metrics(c.collect().unwrap());
        let Some(Data::Sum(calls)) = &rm[0].scope_metrics[0].metrics[0].data else {
            panic!()
        };
        assert_eq!(
            calls.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        assert!(c.collect().is_none(), "nothing new since the last flush");
        c.consume(traces("svc", vec![span("GET", 2, false, 1, vec![])]))
            .await
            .unwrap();
        c.shutdown().await;
        let got = capture.0.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].item_count(),
            2,
            "one calls point and one histogram point"
        );
    }

    #[tokio::test]
    async fn services_get_their_own_resource() {
        let (c, _) = connector("{}");
        c.consume(traces("a", vec![span("x", 2, false, 1, vec![])]))
            .await
            .unwrap();
        c.consume(traces("b", vec![span("x", 2, false, 1, vec![])]))
            .await
            .unwrap();
        let mut services: Vec<String> = metrics(c.collect().unwrap())
            .iter()
            .map(|r| attr(&r.resource.as_ref().unwrap().attributes, "service.name").unwrap())
            .collect();
        services.sort();
        assert_eq!(services, ["a", "b"]);
    }

    #[test]
    fn validation_reports_duplicates_and_bad_temporality() {
        let node = Node::parse(
            "t.yaml",
            "dimensions: [{name: span.kind}]\naggregation_temporality: DELTA\nhistogram: {exponential: {max_size: 10}}\n",
        )
        .unwrap();
        let mut errors = Errors::default();
        assert!(
            registry::check::<SpanMetricsConfig>(&node, "connectors::spanmetrics", &mut errors)
                .is_none()
        );
        let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "connectors::spanmetrics::dimensions",
                "connectors::spanmetrics::aggregation_temporality",
                "connectors::spanmetrics::histogram"
            ]
        );
    }
}
