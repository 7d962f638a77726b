//! The `debug` exporter (the Go collector's debugexporter): writes what arrives to stderr,
//! as a one-line count (`basic`), one line per span/point/record (`normal`) or every field
//! (`detailed`).

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::Node;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, ExporterFactory};
use async_trait::async_trait;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "debug",
    aliases: &[],
    description: "Prints telemetry to the console (basic, normal or detailed)",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: |n, p, e| {
        registry::check::<DebugConfig>(n, p, e);
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// basic | normal | detailed. Default basic.
    pub verbosity: String,
    /// Accepted for compatibility with the Go exporter; every batch is printed.
    pub sampling_initial: Option<u64>,
    pub sampling_thereafter: Option<u64>,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            verbosity: "basic".into(),
            sampling_initial: None,
            sampling_thereafter: None,
        }
    }
}

impl ComponentConfig for DebugConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        if matches!(self.verbosity.as_str(), "basic" | "normal" | "detailed") {
            Vec::new()
        } else {
            vec![(
                "verbosity",
                format!(
                    "unknown verbosity \"{}\"; use basic, normal or detailed",
                    self.verbosity
                ),
            )]
        }
    }
}

fn build(node: &Node, ctx: BuildContext, _signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: DebugConfig = registry::parse(node, &format!("exporters::{}", ctx.id))?;
    Ok(Arc::new(Debug {
        id: ctx.id.to_string(),
        verbosity: cfg.verbosity,
    }))
}

struct Debug {
    id: String,
    verbosity: String,
}

pub fn any_value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex::encode(b),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values
                .iter()
                .map(any_value_text)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(any_value::Value::KvlistValue(kv)) => format!("{{{}}}", attrs_text(&kv.values)),
        Some(any_value::Value::StringValueStrindex(i)) => format!("<string #{i}>"),
        None => String::new(),
    }
}

pub fn attrs_text(attrs: &[KeyValue]) -> String {
    attrs
        .iter()
        .map(|kv| {
            format!(
                "{}={}",
                kv.key,
                kv.value.as_ref().map(any_value_text).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn render(batch: &Batch, detailed: bool) -> String {
    let mut out = String::new();
    match batch {
        Batch::Traces(rs) => {
            for r in rs {
                let res = r
                    .resource
                    .as_ref()
                    .map(|r| attrs_text(&r.attributes))
                    .unwrap_or_default();
                for s in r.scope_spans.iter().flat_map(|s| &s.spans) {
                    let dur =
                        s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) as f64 / 1e6;
                    let status = s.status.as_ref().map(|s| s.code).unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "  span {} trace={} span={} parent={} {:.3}ms status={status}",
                        s.name,
                        hex::encode(&s.trace_id),
                        hex::encode(&s.span_id),
                        hex::encode(&s.parent_span_id),
                        dur
                    );
                    if detailed {
                        let _ = writeln!(
                            out,
                            "    resource: {res}\n    attributes: {}",
                            attrs_text(&s.attributes)
                        );
                        for e in &s.events {
                            let _ = writeln!(
                                out,
                                "    event {}: {}",
                                e.name,
                                attrs_text(&e.attributes)
                            );
                        }
                    }
                }
            }
        }
        Batch::Metrics(rm) => {
            for m in rm
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
            {
                let _ = writeln!(
                    out,
                    "  metric {} unit={} points={}",
                    m.name,
                    m.unit,
                    crate::pdata::data_point_count(m.data.as_ref())
                );
                if detailed {
                    let _ = writeln!(out, "    {:?}", m.data);
                }
            }
        }
        Batch::Logs(rl) => {
            for l in rl
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
            {
                let body = l.body.as_ref().map(any_value_text).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  log {} trace={} span={}: {body}",
                    l.severity_text,
                    hex::encode(&l.trace_id),
                    hex::encode(&l.span_id)
                );
                if detailed {
                    let _ = writeln!(out, "    attributes: {}", attrs_text(&l.attributes));
                }
            }
        }
    }
    out
}

#[async_trait]
impl Consumer for Debug {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let n = batch.item_count();
        let what = batch.signal().item_name();
        let mut text = format!(
            "{}: {} {what} in {} resources\n",
            self.id,
            n,
            match &batch {
                Batch::Traces(r) => r.len(),
                Batch::Metrics(r) => r.len(),
                Batch::Logs(r) => r.len(),
            }
        );
        if self.verbosity != "basic" {
            text.push_str(&render(&batch, self.verbosity == "detailed"));
        }
        eprint!("{text}");
        Ok(())
    }
}
