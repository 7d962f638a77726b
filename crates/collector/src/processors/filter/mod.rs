//! The `filter` processor, after the Go collector-contrib's `filterprocessor` in its OTTL
//! form: drops every span, span event, metric, data point or log record for which any of
//! the configured conditions is true.
//!
//! ```yaml
//! processors:
//!   filter:
//!     error_mode: ignore
//!     traces:
//!       span:
//!         - 'name == "GET /healthz"'
//!         - 'attributes["http.route"] == "/healthz"'
//!         - 'resource.attributes["service.name"] =~ "^traffic"'
//!       spanevent: ['name == "debug"']
//!     metrics:
//!       metric: ['name == "x"', 'name =~ "^go_"']
//!       datapoint: ['attributes["le"] == nil and metric.type == METRIC_DATA_TYPE_SUMMARY']
//!     logs:
//!       log_record: ['severity_number < SEVERITY_NUMBER_INFO']
//! ```
//!
//! The conditions are a small subset of OTTL: comparisons (`==`, `!=`, `<`, `<=`, `>`,
//! `>=`), regular expressions (`=~`, `!~`, `IsMatch(path, "re")`), `and`, `or`, `not`,
//! parentheses, string/int/float/bool/`nil` literals and OTTL enum names. Paths per
//! context:
//! - span: name, kind, status.code, status.message, trace_id.string, span_id.string,
//!   parent_span_id.string, trace_state, start_time_unix_nano, end_time_unix_nano,
//!   dropped_attributes_count, attributes["k"]
//! - spanevent: name, time_unix_nano, span.name, span.kind, span.status.code,
//!   attributes["k"], span.attributes["k"]
//! - metric: name, description, unit, type, aggregation_temporality, is_monotonic
//! - datapoint: metric.name, metric.description, metric.unit, metric.type, value_int,
//!   value_double, count, sum, time_unix_nano, attributes["k"]
//! - log_record: body, severity_number, severity_text, event_name, trace_id.string,
//!   span_id.string, time_unix_nano, observed_time_unix_nano, flags,
//!   dropped_attributes_count, attributes["k"]
//! - everywhere: resource.attributes["k"], instrumentation_scope.name,
//!   instrumentation_scope.version, instrumentation_scope.attributes["k"]
//!
//! Conditions are parsed when the config is validated; a mistake is reported at its list
//! entry (`processors::filter::traces::span::1`) with the column and the known paths.
//! Evaluation cannot fail (values of different types are simply unequal), so `error_mode`
//! is accepted for compatibility and has no effect. The legacy `include`/`exclude` form
//! is not supported.

pub mod condition;

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::{Errors, Node, Value};
use crate::pdata::attributes;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use crate::telemetry::Counter;
use async_trait::async_trait;
use condition::{Condition, Context, Item, Path, Val};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
    metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, span::Event};
use serde::Deserialize;
use std::sync::Arc;

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "filter",
    description: "Drops spans, span events, metrics, data points or log records matching OTTL-like conditions",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate,
    build,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    #[default]
    Propagate,
    Ignore,
    Silent,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// propagate | ignore | silent: what to do when a condition cannot be evaluated. Ours
    /// always evaluate, so it is accepted and ignored (with a warning). Default propagate.
    pub error_mode: ErrorMode,
    /// Conditions for traces. Default none.
    pub traces: TraceConditions,
    /// Conditions for metrics. Default none.
    pub metrics: MetricConditions,
    /// Conditions for logs. Default none.
    pub logs: LogConditions,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConditions {
    /// A span matching any of these is dropped (its events and links with it). Default none.
    pub span: Vec<String>,
    /// A span event matching any of these is removed from its span. Default none.
    pub spanevent: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricConditions {
    /// A metric matching any of these is dropped with all its data points. Default none.
    pub metric: Vec<String>,
    /// A data point matching any of these is dropped; a metric left without data points is
    /// dropped too. Default none.
    pub datapoint: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConditions {
    /// A log record matching any of these is dropped. Default none.
    pub log_record: Vec<String>,
}

impl ComponentConfig for FilterConfig {
    fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        vec![(
            "error_mode",
            "conditions here cannot fail to evaluate (values of different types are unequal), so there is no error to handle",
        )]
    }
}

impl FilterConfig {
    /// Every condition list with its key path below the component and its context.
    fn lists(&self) -> [(&'static str, &'static str, Context, &Vec<String>); 5] {
        [
            ("traces", "span", Context::Span, &self.traces.span),
            (
                "traces",
                "spanevent",
                Context::SpanEvent,
                &self.traces.spanevent,
            ),
            ("metrics", "metric", Context::Metric, &self.metrics.metric),
            (
                "metrics",
                "datapoint",
                Context::DataPoint,
                &self.metrics.datapoint,
            ),
            (
                "logs",
                "log_record",
                Context::LogRecord,
                &self.logs.log_record,
            ),
        ]
    }
}

fn validate(node: &Node, path: &str, errors: &mut Errors) -> Option<Decoded> {
    let before = errors.errors.len();
    let cfg = registry::check::<FilterConfig>(node, path, errors)?;
    for (section, key, ctx, list) in cfg.lists() {
        let items = node
            .get(section)
            .and_then(|s| s.get(key))
            .map(|n| match &n.value {
                Value::Seq(items) => items.as_slice(),
                _ => &[],
            });
        for (i, text) in list.iter().enumerate() {
            if let Err(msg) = Condition::parse(text, ctx) {
                let loc = items
                    .and_then(|it| it.get(i))
                    .map(|n| n.loc.clone())
                    .unwrap_or_else(|| node.loc.clone());
                errors.error(
                    Some(loc),
                    format!("{path}::{section}::{key}::{i}"),
                    format!("invalid condition '{text}': {msg}"),
                );
            }
        }
    }
    (errors.errors.len() == before).then(|| Arc::new(cfg) as Decoded)
}

/// Parsed conditions per context.
#[derive(Default)]
pub struct Conditions {
    span: Vec<Condition>,
    spanevent: Vec<Condition>,
    metric: Vec<Condition>,
    datapoint: Vec<Condition>,
    log_record: Vec<Condition>,
}

impl Conditions {
    pub fn parse(cfg: &FilterConfig) -> Result<Conditions, String> {
        let mut out = Conditions::default();
        for (section, key, ctx, list) in cfg.lists() {
            let parsed = list
                .iter()
                .map(|t| {
                    Condition::parse(t, ctx)
                        .map_err(|e| format!("{section}::{key}: invalid condition '{t}': {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match ctx {
                Context::Span => out.span = parsed,
                Context::SpanEvent => out.spanevent = parsed,
                Context::Metric => out.metric = parsed,
                Context::DataPoint => out.datapoint = parsed,
                Context::LogRecord => out.log_record = parsed,
            }
        }
        Ok(out)
    }
}

fn build(
    decoded: &Decoded,
    ctx: BuildContext,
    signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: FilterConfig = registry::typed::<FilterConfig>(decoded).clone();
    let conditions = Conditions::parse(&cfg).map_err(anyhow::Error::msg)?;
    let id = ctx.id.to_string();
    let name: &'static str = match signal {
        Signal::Traces => "otelcol_processor_filter_spans_filtered_total",
        Signal::Metrics => "otelcol_processor_filter_datapoints_filtered_total",
        Signal::Logs => "otelcol_processor_filter_logs_filtered_total",
    };
    let filtered = ctx.telemetry.counter(
        name,
        "Number of items dropped by the filter processor",
        &[("filter", id.as_str())],
    );
    Ok(Arc::new(FilterProcessor::new(conditions, filtered, next)))
}

pub struct FilterProcessor {
    conditions: Conditions,
    filtered: Counter,
    next: SharedConsumer,
}

/// The item under test and its envelopes.
#[derive(Default, Clone, Copy)]
struct View<'a> {
    resource: Option<&'a Resource>,
    scope: Option<&'a InstrumentationScope>,
    span: Option<&'a Span>,
    event: Option<&'a Event>,
    metric: Option<&'a Metric>,
    point: Option<Point<'a>>,
    log: Option<&'a LogRecord>,
}

#[derive(Clone, Copy)]
enum Point<'a> {
    Number(&'a NumberDataPoint),
    Histogram(&'a HistogramDataPoint),
    Exponential(&'a ExponentialHistogramDataPoint),
    Summary(&'a SummaryDataPoint),
}

impl Point<'_> {
    fn attributes(&self) -> &[KeyValue] {
        match self {
            Point::Number(p) => &p.attributes,
            Point::Histogram(p) => &p.attributes,
            Point::Exponential(p) => &p.attributes,
            Point::Summary(p) => &p.attributes,
        }
    }
    fn time(&self) -> u64 {
        match self {
            Point::Number(p) => p.time_unix_nano,
            Point::Histogram(p) => p.time_unix_nano,
            Point::Exponential(p) => p.time_unix_nano,
            Point::Summary(p) => p.time_unix_nano,
        }
    }
}

fn from_any(v: Option<&AnyValue>) -> Val {
    match v.and_then(|v| v.value.as_ref()) {
        None => Val::Nil,
        Some(any_value::Value::StringValue(s)) => Val::Str(s.clone()),
        Some(any_value::Value::IntValue(i)) => Val::Int(*i),
        Some(any_value::Value::DoubleValue(f)) => Val::Float(*f),
        Some(any_value::Value::BoolValue(b)) => Val::Bool(*b),
        Some(_) => Val::Str(attributes::as_text(v.expect("value present"))),
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Val {
    from_any(attributes::get(attrs, key))
}

fn uint(n: u64) -> Val {
    Val::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn id_hex(b: &[u8]) -> Val {
    Val::Str(hex::encode(b))
}

fn metric_type(m: &Metric) -> i64 {
    match &m.data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    }
}

impl Item for View<'_> {
    fn get(&self, path: &Path) -> Val {
        let span = self.span;
        let metric = self.metric;
        let point = self.point;
        let log = self.log;
        let s = |f: &dyn Fn(&Span) -> Val| span.map_or(Val::Nil, f);
        let m = |f: &dyn Fn(&Metric) -> Val| metric.map_or(Val::Nil, f);
        let l = |f: &dyn Fn(&LogRecord) -> Val| log.map_or(Val::Nil, f);
        match path {
            Path::Name => match self.event {
                Some(e) => Val::Str(e.name.clone()),
                None => s(&|s| Val::Str(s.name.clone())),
            },
            Path::SpanName => s(&|s| Val::Str(s.name.clone())),
            Path::Kind => s(&|s| Val::Int(i64::from(s.kind))),
            Path::StatusCode => {
                s(&|s| Val::Int(s.status.as_ref().map_or(0, |st| i64::from(st.code))))
            }
            Path::StatusMessage => s(&|s| {
                Val::Str(
                    s.status
                        .as_ref()
                        .map(|st| st.message.clone())
                        .unwrap_or_default(),
                )
            }),
            Path::TraceId => match log {
                Some(l) => id_hex(&l.trace_id),
                None => s(&|s| id_hex(&s.trace_id)),
            },
            Path::SpanId => match log {
                Some(l) => id_hex(&l.span_id),
                None => s(&|s| id_hex(&s.span_id)),
            },
            Path::ParentSpanId => s(&|s| id_hex(&s.parent_span_id)),
            Path::TraceState => s(&|s| Val::Str(s.trace_state.clone())),
            Path::StartTime => s(&|s| uint(s.start_time_unix_nano)),
            Path::EndTime => s(&|s| uint(s.end_time_unix_nano)),
            Path::Time => match (self.event, point, log) {
                (Some(e), _, _) => uint(e.time_unix_nano),
                (_, Some(p), _) => uint(p.time()),
                (_, _, Some(l)) => uint(l.time_unix_nano),
                _ => Val::Nil,
            },
            Path::ObservedTime => l(&|l| uint(l.observed_time_unix_nano)),
            Path::Flags => l(&|l| Val::Int(i64::from(l.flags))),
            Path::Dropped => match log {
                Some(l) => Val::Int(i64::from(l.dropped_attributes_count)),
                None => s(&|s| Val::Int(i64::from(s.dropped_attributes_count))),
            },
            Path::ScopeName => self
                .scope
                .map_or(Val::Str(String::new()), |sc| Val::Str(sc.name.clone())),
            Path::ScopeVersion => self
                .scope
                .map_or(Val::Str(String::new()), |sc| Val::Str(sc.version.clone())),
            Path::ResourceDropped => Val::Int(
                self.resource
                    .map_or(0, |r| i64::from(r.dropped_attributes_count)),
            ),
            Path::MetricName => m(&|m| Val::Str(m.name.clone())),
            Path::Description => m(&|m| Val::Str(m.description.clone())),
            Path::Unit => m(&|m| Val::Str(m.unit.clone())),
            Path::MetricType => m(&|m| Val::Int(metric_type(m))),
            Path::Temporality => m(&|m| match &m.data {
                Some(Data::Sum(s)) => Val::Int(i64::from(s.aggregation_temporality)),
                Some(Data::Histogram(h)) => Val::Int(i64::from(h.aggregation_temporality)),
                Some(Data::ExponentialHistogram(h)) => {
                    Val::Int(i64::from(h.aggregation_temporality))
                }
                _ => Val::Int(0),
            }),
            Path::Monotonic => {
                m(&|m| Val::Bool(matches!(&m.data, Some(Data::Sum(s)) if s.is_monotonic)))
            }
            Path::ValueInt => match point {
                Some(Point::Number(p)) => match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Val::Int(i),
                    _ => Val::Int(0),
                },
                _ => Val::Nil,
            },
            Path::ValueDouble => match point {
                Some(Point::Number(p)) => match p.value {
                    Some(number_data_point::Value::AsDouble(f)) => Val::Float(f),
                    _ => Val::Float(0.0),
                },
                _ => Val::Nil,
            },
            Path::Count => match point {
                Some(Point::Histogram(p)) => uint(p.count),
                Some(Point::Exponential(p)) => uint(p.count),
                Some(Point::Summary(p)) => uint(p.count),
                _ => Val::Nil,
            },
            Path::Sum => match point {
                Some(Point::Histogram(p)) => p.sum.map_or(Val::Nil, Val::Float),
                Some(Point::Exponential(p)) => p.sum.map_or(Val::Nil, Val::Float),
                Some(Point::Summary(p)) => Val::Float(p.sum),
                _ => Val::Nil,
            },
            Path::Body => l(&|l| from_any(l.body.as_ref())),
            Path::SeverityNumber => l(&|l| Val::Int(i64::from(l.severity_number))),
            Path::SeverityText => l(&|l| Val::Str(l.severity_text.clone())),
            Path::EventName => l(&|l| Val::Str(l.event_name.clone())),
            Path::Attr(k) => match (self.event, point, log) {
                (Some(e), _, _) => attr(&e.attributes, k),
                (_, Some(p), _) => attr(p.attributes(), k),
                (_, _, Some(l)) => attr(&l.attributes, k),
                _ => s(&|s| attr(&s.attributes, k)),
            },
            Path::SpanAttr(k) => s(&|s| attr(&s.attributes, k)),
            Path::ResourceAttr(k) => self.resource.map_or(Val::Nil, |r| attr(&r.attributes, k)),
            Path::ScopeAttr(k) => self.scope.map_or(Val::Nil, |sc| attr(&sc.attributes, k)),
        }
    }
}

fn any(conds: &[Condition], view: &View) -> bool {
    conds.iter().any(|c| c.matches(view))
}

impl FilterProcessor {
    pub fn new(conditions: Conditions, filtered: Counter, next: SharedConsumer) -> Self {
        FilterProcessor {
            conditions,
            filtered,
            next,
        }
    }

    /// Filters in place; returns how many items (spans, data points, log records) went.
    fn filter(&self, batch: &mut Batch) -> usize {
        let c = &self.conditions;
        let before = batch.item_count();
        match batch {
            Batch::Traces(rs) => {
                for r in rs.iter_mut() {
                    let resource = r.resource.as_ref();
                    for ss in r.scope_spans.iter_mut() {
                        let scope = ss.scope.as_ref();
                        let base = View {
                            resource,
                            scope,
                            ..View::default()
                        };
                        ss.spans.retain_mut(|span| {
                            if any(
                                &c.span,
                                &View {
                                    span: Some(span),
                                    ..base
                                },
                            ) {
                                return false;
                            }
                            if !c.spanevent.is_empty() {
                                let events = std::mem::take(&mut span.events);
                                let kept = events
                                    .into_iter()
                                    .filter(|e| {
                                        !any(
                                            &c.spanevent,
                                            &View {
                                                span: Some(span),
                                                event: Some(e),
                                                ..base
                                            },
                                        )
                                    })
                                    .collect();
                                span.events = kept;
                            }
                            true
                        });
                    }
                    r.scope_spans.retain(|s| !s.spans.is_empty());
                }
                rs.retain(|r| !r.scope_spans.is_empty());
            }
            Batch::Metrics(rm) => {
                for r in rm.iter_mut() {
                    let resource = r.resource.as_ref();
                    for sm in r.scope_metrics.iter_mut() {
                        let scope = sm.scope.as_ref();
                        let base = View {
                            resource,
                            scope,
                            ..View::default()
                        };
                        sm.metrics.retain_mut(|metric| {
                            if any(
                                &c.metric,
                                &View {
                                    metric: Some(metric),
                                    ..base
                                },
                            ) {
                                return false;
                            }
                            if c.datapoint.is_empty() {
                                return true;
                            }
                            let snapshot = Metric {
                                data: None,
                                ..metric.clone()
                            };
                            let view = View {
                                metric: Some(&snapshot),
                                ..base
                            };
                            let keep = |p: Point| {
                                !any(
                                    &c.datapoint,
                                    &View {
                                        point: Some(p),
                                        ..view
                                    },
                                )
                            };
                            match &mut metric.data {
                                Some(Data::Gauge(g)) => {
                                    g.data_points.retain(|p| keep(Point::Number(p)))
                                }
                                Some(Data::Sum(s)) => {
                                    s.data_points.retain(|p| keep(Point::Number(p)))
                                }
                                Some(Data::Histogram(h)) => {
                                    h.data_points.retain(|p| keep(Point::Histogram(p)))
                                }
                                Some(Data::ExponentialHistogram(h)) => {
                                    h.data_points.retain(|p| keep(Point::Exponential(p)))
                                }
                                Some(Data::Summary(s)) => {
                                    s.data_points.retain(|p| keep(Point::Summary(p)))
                                }
                                None => {}
                            }
                            crate::pdata::data_point_count(metric.data.as_ref()) > 0
                        });
                    }
                    r.scope_metrics.retain(|s| !s.metrics.is_empty());
                }
                rm.retain(|r| !r.scope_metrics.is_empty());
            }
            Batch::Logs(rl) => {
                for r in rl.iter_mut() {
                    let resource = r.resource.as_ref();
                    for sl in r.scope_logs.iter_mut() {
                        let scope = sl.scope.as_ref();
                        let base = View {
                            resource,
                            scope,
                            ..View::default()
                        };
                        sl.log_records.retain(|log| {
                            !any(
                                &c.log_record,
                                &View {
                                    log: Some(log),
                                    ..base
                                },
                            )
                        });
                    }
                    r.scope_logs.retain(|s| !s.log_records.is_empty());
                }
                rl.retain(|r| !r.scope_logs.is_empty());
            }
        }
        before - batch.item_count()
    }
}

#[async_trait]
impl Consumer for FilterProcessor {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        let dropped = self.filter(&mut batch);
        self.filtered.add(dropped as u64);
        if batch.is_empty() {
            // Everything was filtered out: nothing to hand on, and not an error.
            return Ok(());
        }
        self.next.consume(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::attributes::tests::Capture;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, ResourceMetrics, ScopeMetrics};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    const EXAMPLE: &str = r#"
error_mode: ignore
traces:
  span: ['name == "GET /healthz"', 'attributes["http.route"] == "/healthz"', 'resource.attributes["service.name"] =~ "^traffic"']
metrics:
  metric: ['name == "x"', 'name =~ "^go_"']
  datapoint: ['attributes["route"] == "/healthz"']
logs:
  log_record: ['severity_number < 9']
"#;

    fn processor(yaml: &str) -> (FilterProcessor, Arc<Capture>) {
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        validate(&node, "processors::filter", &mut errors);
        assert!(errors.is_ok(), "{:?}", errors.errors);
        let cfg: FilterConfig = registry::parse(&node, "processors::filter").unwrap();
        let capture = Arc::new(Capture::default());
        (
            FilterProcessor::new(
                Conditions::parse(&cfg).unwrap(),
                Counter::default(),
                capture.clone(),
            ),
            capture,
        )
    }

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![attributes::string_kv("service.name", service)],
            ..Default::default()
        })
    }

    fn span(name: &str, attrs: Vec<KeyValue>) -> Span {
        Span {
            name: name.into(),
            attributes: attrs,
            status: Some(Status {
                code: 2,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn drops_health_checks_and_traffic_generator_spans() {
        let (p, capture) = processor(EXAMPLE);
        let batch = Batch::Traces(vec![
            ResourceSpans {
                resource: resource("order-service"),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span("GET /healthz", vec![]),
                        span("GET", vec![attributes::string_kv("http.route", "/healthz")]),
                        span(
                            "POST /orders",
                            vec![attributes::string_kv("http.route", "/orders")],
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource("traffic-gen"),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span("POST /orders", vec![])],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ]);
        p.consume(batch).await.unwrap();
        let got = capture.0.lock().unwrap().pop().unwrap();
        let Batch::Traces(rs) = got else { panic!() };
        assert_eq!(rs.len(), 1, "the traffic-gen resource had nothing left");
        let names: Vec<&str> = rs[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["POST /orders"]);
        assert_eq!(p.filtered.get(), 3);
    }

    #[tokio::test]
    async fn drops_metrics_by_name_and_points_by_attribute() {
        let (p, capture) = processor(EXAMPLE);
        let gauge = |name: &str, routes: &[&str]| Metric {
            name: name.into(),
            data: Some(Data::Gauge(Gauge {
                data_points: routes
                    .iter()
                    .map(|r| NumberDataPoint {
                        attributes: vec![attributes::string_kv("route", *r)],
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        };
        let batch = Batch::Metrics(vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    gauge("go_goroutines", &["/a"]),
                    gauge("x", &["/a"]),
                    gauge("http.server.request.duration", &["/healthz", "/orders"]),
                    gauge("only.health", &["/healthz"]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        p.consume(batch).await.unwrap();
        let Batch::Metrics(rm) = capture.0.lock().unwrap().pop().unwrap() else {
            panic!()
        };
        let metrics = &rm[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0].name, "http.server.request.duration");
        assert_eq!(crate::pdata::data_point_count(metrics[0].data.as_ref()), 1);
    }

    #[tokio::test]
    async fn drops_logs_below_info_and_sends_nothing_when_all_go() {
        let (p, capture) = processor(EXAMPLE);
        let log = |sev: i32| LogRecord {
            severity_number: sev,
            ..Default::default()
        };
        let batch = |sevs: &[i32]| {
            Batch::Logs(vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: sevs.iter().map(|s| log(*s)).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }])
        };
        p.consume(batch(&[5, 9, 17])).await.unwrap();
        p.consume(batch(&[1, 5])).await.unwrap();
        let got = capture.0.lock().unwrap();
        assert_eq!(got.len(), 1, "an all-filtered batch is not sent on");
        assert_eq!(got[0].item_count(), 2);
    }

    #[test]
    fn a_bad_condition_is_reported_at_its_list_entry() {
        let yaml = "traces:\n  span:\n    - 'name == \"ok\"'\n    - 'nme == \"x\"'\nlogs:\n  log_record: ['severity_number <']\n";
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        validate(&node, "processors::filter", &mut errors);
        assert_eq!(errors.errors.len(), 2, "{:?}", errors.errors);
        let e = &errors.errors[0];
        assert_eq!(e.path, "processors::filter::traces::span::1");
        assert_eq!(e.loc.as_ref().unwrap().line, 4);
        assert!(e.message.contains("unknown path `nme`"), "{}", e.message);
        assert_eq!(
            errors.errors[1].path,
            "processors::filter::logs::log_record::0"
        );
    }

    #[test]
    fn status_and_kind_enums_work_on_spans() {
        let c = Condition::parse(
            "status.code == STATUS_CODE_ERROR and kind != SPAN_KIND_SERVER",
            Context::Span,
        )
        .unwrap();
        let s = span("x", vec![]);
        assert!(c.matches(&View {
            span: Some(&s),
            ..View::default()
        }));
    }
}
