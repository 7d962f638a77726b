//! The `debug` exporter (the Go collector's debugexporter): writes what arrives to stderr,
//! as a one-line count (`basic`), one line per span/point/record (`normal`) or every field
//! (`detailed`). As in Go, output is sampled per second: the first `sampling_initial`
//! batches of each second are printed, then every `sampling_thereafter`-th (defaults 2 and
//! 1: everything).

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
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
    validate: registry::validate::<DebugConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// basic | normal | detailed. Default basic.
    pub verbosity: String,
    /// Batches printed in full each second before sampling starts. Default 2.
    pub sampling_initial: u64,
    /// Then one batch in this many is printed. Default 1 (every batch).
    pub sampling_thereafter: u64,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig {
            verbosity: "basic".into(),
            sampling_initial: 2,
            sampling_thereafter: 1,
        }
    }
}

impl ComponentConfig for DebugConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if !matches!(self.verbosity.as_str(), "basic" | "normal" | "detailed") {
            v.push((
                "verbosity",
                format!(
                    "unknown verbosity \"{}\"; use basic, normal or detailed",
                    self.verbosity
                ),
            ));
        }
        if self.sampling_thereafter == 0 {
            v.push((
                "sampling_thereafter",
                "must be at least 1 (1 prints every batch)".into(),
            ));
        }
        v
    }
}

fn build(decoded: &Decoded, ctx: BuildContext, _signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: DebugConfig = registry::typed::<DebugConfig>(decoded).clone();
    Ok(Arc::new(Debug {
        id: ctx.id.to_string(),
        verbosity: cfg.verbosity,
        sampler: Sampler::new(cfg.sampling_initial, cfg.sampling_thereafter),
    }))
}

struct Debug {
    id: String,
    verbosity: String,
    sampler: Sampler,
}

/// zap's sampler, as the Go exporter configures it: per one-second window, the first
/// `initial` batches pass, then every `thereafter`-th.
struct Sampler {
    initial: u64,
    thereafter: u64,
    window: std::sync::Mutex<(std::time::Instant, u64)>,
}

impl Sampler {
    fn new(initial: u64, thereafter: u64) -> Self {
        Sampler {
            initial,
            thereafter: thereafter.max(1),
            window: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }

    fn admit(&self, now: std::time::Instant) -> bool {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(window.0) >= std::time::Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        let n = window.1;
        n <= self.initial || (n - self.initial).is_multiple_of(self.thereafter)
    }
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
        self.consume_shared(&batch).await
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        if !self.sampler.admit(std::time::Instant::now()) {
            return Ok(());
        }
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
            text.push_str(&render(batch, self.verbosity == "detailed"));
        }
        eprint!("{text}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn sampling_passes_the_first_batches_of_each_second_then_every_nth() {
        let sampler = Sampler::new(2, 3);
        let start = Instant::now();
        let passed: Vec<bool> = (0..8).map(|_| sampler.admit(start)).collect();
        // 1 and 2 (initial), then the 3rd after them (5), then 8.
        assert_eq!(passed, [true, true, false, false, true, false, false, true]);
        assert!(
            sampler.admit(start + Duration::from_millis(1001)),
            "a new second starts over"
        );
    }

    #[test]
    fn the_defaults_print_every_batch() {
        let cfg = DebugConfig::default();
        let sampler = Sampler::new(cfg.sampling_initial, cfg.sampling_thereafter);
        let now = Instant::now();
        assert!((0..100).all(|_| sampler.admit(now)));
    }
}
