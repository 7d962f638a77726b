//! The `probabilistic_sampler` processor, after the Go collector-contrib's
//! `probabilisticsamplerprocessor`: keeps `sampling_percentage` % of traces (and of logs),
//! deciding per trace id so that every span of a trace gets the same decision.
//!
//! Modes, as in Go:
//! - `hash_seed` (chosen when `hash_seed` is set): FNV-1a 32-bit over the seed's 4
//!   little-endian bytes followed by the 16 trace-id bytes; the low 14 bits are compared
//!   with `uint32(float32(pct) * 163.84)`: a span is kept when `hash & 0x3fff` is below it.
//!   Collectors with different seeds sample independently.
//! - `proportional` (the default) and `equalizing`: OTel consistent probability sampling;
//!   the randomness is the `rv` of the `ot` tracestate entry or the trace id's low 56 bits,
//!   and a span is kept when it is at least the rejection threshold `(1 - p) * 2^56`
//!   (rounded to `sampling_precision` hex digits). Proportional multiplies an incoming
//!   `th` probability by p, equalizing lowers any higher incoming probability to p.
//!
//! Kept spans carry the threshold as `th` in their `ot` tracestate entry (and, in
//! hash_seed mode, the randomness as `rv`), as Go writes them. A span attribute
//! `sampling.priority` of 0 drops the span, a positive one keeps it. When no decision
//! can be made (an unparseable tracestate, no trace id in a consistent mode, an existing
//! `rv`/`th` in hash_seed mode) `fail_closed` drops the item. Logs: the trace id (or, with
//! `attribute_source: record`, the `from_attribute` value) is the randomness source, and
//! `sampling_priority` names an attribute holding a per-record percentage; Go's
//! `sampling.randomness`/`sampling.threshold` log attributes are not written.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::pdata::attributes;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use async_trait::async_trait;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use serde::Deserialize;
use std::sync::Arc;

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "probabilistic_sampler",
    description: "Keeps a percentage of traces or logs, decided consistently per trace id",
    signals: &[Signal::Traces, Signal::Logs],
    validate: registry::validate::<SamplerConfig>,
    build,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    HashSeed,
    Equalizing,
    Proportional,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum AttributeSource {
    #[serde(rename = "traceID")]
    TraceId,
    #[serde(rename = "record")]
    Record,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Percentage of traces (or logs) to keep; 0 keeps nothing, 100 or more keeps all.
    /// Default 0, as in Go.
    pub sampling_percentage: f32,
    /// Seed of the FNV hash; setting it selects `hash_seed` mode. Give each collector
    /// tier its own seed. Default 0.
    pub hash_seed: u32,
    /// hash_seed | proportional | equalizing. Default hash_seed, as in Go since 2025-01
    /// (contrib PR 37536).
    pub mode: Option<Mode>,
    /// Drop items for which no decision can be made (see the module doc). Default true.
    pub fail_closed: bool,
    /// Hex digits of the threshold written to the tracestate (1..=14). Default 4.
    pub sampling_precision: u8,
    /// Logs only: traceID (hash the record's trace id) | record (hash `from_attribute`).
    /// Default traceID.
    pub attribute_source: AttributeSource,
    /// Logs only: attribute whose value is hashed when `attribute_source: record`, or when
    /// a record has no trace id. Default none.
    pub from_attribute: String,
    /// Logs only: attribute holding a per-record sampling percentage that overrides
    /// `sampling_percentage` (0 never, 100 always). Default none.
    pub sampling_priority: String,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            sampling_percentage: 0.0,
            hash_seed: 0,
            mode: None,
            fail_closed: true,
            sampling_precision: 4,
            attribute_source: AttributeSource::TraceId,
            from_attribute: String::new(),
            sampling_priority: String::new(),
        }
    }
}

/// The smallest probability the 56-bit threshold can express.
const MIN_PROBABILITY: f64 = 1.0 / (1u64 << 56) as f64;
const MAX_THRESHOLD: u64 = 1 << 56;

impl ComponentConfig for SamplerConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let pct = self.sampling_percentage;
        if !pct.is_finite() {
            v.push((
                "sampling_percentage",
                format!("sampling rate is invalid: {pct}%"),
            ));
        } else if pct < 0.0 {
            v.push((
                "sampling_percentage",
                format!("sampling rate is negative: {pct}%"),
            ));
        } else if pct > 0.0 && f64::from(pct) / 100.0 < MIN_PROBABILITY {
            v.push((
                "sampling_percentage",
                format!("sampling rate is too small: {pct}%"),
            ));
        }
        if !(1..=14).contains(&self.sampling_precision) {
            v.push((
                "sampling_precision",
                format!(
                    "must be between 1 and 14 hex digits, found {}",
                    self.sampling_precision
                ),
            ));
        }
        if self.attribute_source == AttributeSource::Record && self.from_attribute.is_empty() {
            v.push((
                "from_attribute",
                "attribute_source: record needs from_attribute".into(),
            ));
        }
        v
    }
}

fn build(
    decoded: &Decoded,
    _ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: SamplerConfig = registry::typed::<SamplerConfig>(decoded).clone();
    Ok(Arc::new(Sampler::new(cfg, next)))
}

pub struct Sampler {
    cfg: SamplerConfig,
    mode: Mode,
    /// hash_seed mode: keep when the 14-bit hash is below this.
    scaled_rate: u32,
    /// Consistent modes: configured sampling probability in (0, 1].
    ratio: f64,
    next: SharedConsumer,
}

/// FNV-1a, 32 bit (the Go standard library's `hash/fnv` New32a).
pub fn fnv1a32(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The hash_seed decision input: the low 14 bits of FNV-1a(seed LE bytes ++ data).
pub fn hash14(seed: u32, data: &[u8]) -> u32 {
    fnv1a32(&[&seed.to_le_bytes(), data]) & 0x3fff
}

/// Go's `uint32(pct * percentageScaleFactor)`: float32 multiplication, truncated.
pub fn scaled_rate(pct: f32) -> u32 {
    (pct.min(100.0) * 163.84_f32) as u32
}

/// The 56-bit randomness Go derives from the 32-bit hash in hash_seed mode, so that
/// consistent samplers downstream make the same decision: 14 bits `16383 - hash14`,
/// 28 bits mixed from the unused hash bits, then the 14-bit hash.
fn hash_randomness(seed: u32, data: &[u8]) -> u64 {
    let h = fnv1a32(&[&seed.to_le_bytes(), data]);
    let hashed = u64::from(h & 0x3fff);
    let unused18 = u64::from(h >> 14);
    let mixed28 = unused18 ^ (unused18 << 10);
    ((0x3fff - hashed) << 42) | (mixed28 << 14) | hashed
}

/// A 56-bit rejection threshold as the tracestate `th` value: 14 hex digits without
/// trailing zeros ("0" means always sample).
fn threshold_hex(t: u64) -> String {
    if t == 0 {
        return "0".into();
    }
    let s = format!("{t:014x}");
    s.trim_end_matches('0').to_string()
}

fn parse_threshold(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 14 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{s:0<14}");
    u64::from_str_radix(&padded, 16).ok()
}

/// `(1 - p) * 2^56`, rounded to `precision` significant hex digits.
fn threshold_for(p: f64, precision: u8) -> u64 {
    if p >= 1.0 {
        return 0;
    }
    let exact = ((1.0 - p) * MAX_THRESHOLD as f64).round() as u64;
    let exact = exact.min(MAX_THRESHOLD - 1);
    let digits = 14 - exact.leading_zeros().saturating_sub(8) / 4;
    let drop = digits.saturating_sub(u32::from(precision)) * 4;
    if drop == 0 {
        return exact;
    }
    let unit = 1u64 << drop;
    (exact.div_ceil(unit).saturating_mul(unit)).min(MAX_THRESHOLD - 1)
}

/// The `ot` entry of a W3C tracestate, split into its sub-keys.
struct OtState {
    /// Other tracestate members, kept in order.
    others: Vec<String>,
    fields: Vec<(String, String)>,
}

impl OtState {
    fn parse(ts: &str) -> Option<OtState> {
        let mut others = Vec::new();
        let mut fields = Vec::new();
        for member in ts.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let (k, v) = member.split_once('=')?;
            if k == "ot" {
                for f in v.split(';').filter(|f| !f.is_empty()) {
                    let (fk, fv) = f.split_once(':')?;
                    fields.push((fk.to_string(), fv.to_string()));
                }
            } else {
                others.push(member.to_string());
            }
        }
        Some(OtState { others, fields })
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(fk, _)| fk == k)
            .map(|(_, v)| v.as_str())
    }
    fn set(&mut self, k: &str, v: String) {
        match self.fields.iter_mut().find(|(fk, _)| fk == k) {
            Some(f) => f.1 = v,
            None => self.fields.push((k.to_string(), v)),
        }
    }
    fn serialize(&self) -> String {
        let mut out = Vec::new();
        if !self.fields.is_empty() {
            let ot: Vec<String> = self
                .fields
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            out.push(format!("ot={}", ot.join(";")));
        }
        out.extend(self.others.iter().cloned());
        out.join(",")
    }
}

enum Priority {
    Defer,
    Keep,
    Drop,
}

fn priority_of(attrs: &[KeyValue]) -> Priority {
    let n = match attributes::get(attrs, "sampling.priority").and_then(|v| v.value.as_ref()) {
        Some(Value::IntValue(i)) => *i as f64,
        Some(Value::DoubleValue(f)) => *f,
        Some(Value::StringValue(s)) => match s.parse::<f64>() {
            Ok(f) => f,
            Err(_) => return Priority::Defer,
        },
        _ => return Priority::Defer,
    };
    if n == 0.0 {
        Priority::Drop
    } else if n > 0.0 {
        Priority::Keep
    } else {
        Priority::Defer
    }
}

fn bytes_of(v: &AnyValue) -> Vec<u8> {
    match &v.value {
        Some(Value::StringValue(s)) => s.as_bytes().to_vec(),
        Some(Value::BytesValue(b)) => b.clone(),
        _ => attributes::as_text(v).into_bytes(),
    }
}

fn low56(trace_id: &[u8]) -> Option<u64> {
    if trace_id.len() != 16 || trace_id.iter().all(|b| *b == 0) {
        return None;
    }
    let mut b = [0u8; 8];
    b[1..].copy_from_slice(&trace_id[9..16]);
    Some(u64::from_be_bytes(b))
}

impl Sampler {
    pub fn new(cfg: SamplerConfig, next: SharedConsumer) -> Sampler {
        let mode = cfg.mode.unwrap_or(Mode::HashSeed);
        let ratio = (f64::from(cfg.sampling_percentage) / 100.0).min(1.0);
        Sampler {
            scaled_rate: scaled_rate(cfg.sampling_percentage),
            ratio: if ratio > 0.0 {
                ratio.max(MIN_PROBABILITY)
            } else {
                0.0
            },
            mode,
            cfg,
            next,
        }
    }

    /// Decides for one span, updating its tracestate when it is kept.
    fn keep_span(&self, trace_id: &[u8], trace_state: &mut String, attrs: &[KeyValue]) -> bool {
        let priority = priority_of(attrs);
        if let Priority::Drop = priority {
            return false;
        }
        let forced = matches!(priority, Priority::Keep);
        let Some(mut ot) = OtState::parse(trace_state) else {
            return forced || !self.cfg.fail_closed;
        };
        let decision = match self.mode {
            Mode::HashSeed => {
                if ot.get("rv").is_some() || ot.get("th").is_some() {
                    // The data already carries consistent-sampling information that this
                    // legacy mode must not overwrite.
                    None
                } else {
                    let keep = hash14(self.cfg.hash_seed, trace_id) < self.scaled_rate;
                    let reject = u64::from(0x4000 - self.scaled_rate.min(0x4000)) << 42;
                    Some((
                        keep,
                        reject,
                        Some(hash_randomness(self.cfg.hash_seed, trace_id)),
                    ))
                }
            }
            Mode::Proportional | Mode::Equalizing => {
                let rnd = match ot.get("rv") {
                    Some(rv) => parse_threshold(rv).filter(|_| rv.len() == 14),
                    None => low56(trace_id),
                };
                let incoming = match ot.get("th") {
                    Some(th) => parse_threshold(th),
                    None => Some(0),
                };
                match (rnd, incoming) {
                    (Some(rnd), Some(incoming)) if self.ratio > 0.0 => {
                        let t = if self.mode == Mode::Proportional {
                            let p_in = 1.0 - incoming as f64 / MAX_THRESHOLD as f64;
                            threshold_for(
                                (p_in * self.ratio).max(MIN_PROBABILITY),
                                self.cfg.sampling_precision,
                            )
                        } else {
                            threshold_for(self.ratio, self.cfg.sampling_precision).max(incoming)
                        };
                        Some((rnd >= t, t, None))
                    }
                    (Some(_), Some(_)) => Some((false, MAX_THRESHOLD, None)),
                    _ => None,
                }
            }
        };
        let Some((keep, threshold, rv)) = decision else {
            return forced || !self.cfg.fail_closed;
        };
        if self.mode == Mode::HashSeed && self.scaled_rate == 0 {
            return forced;
        }
        if keep || forced {
            if keep {
                if let Some(rv) = rv {
                    ot.set("rv", format!("{rv:014x}"));
                }
                ot.set("th", threshold_hex(threshold));
                *trace_state = ot.serialize();
            }
            return true;
        }
        false
    }

    fn keep_log(&self, trace_id: &[u8], attrs: &[KeyValue]) -> bool {
        let (pct, scaled) = match (!self.cfg.sampling_priority.is_empty())
            .then(|| attributes::get(attrs, &self.cfg.sampling_priority))
            .flatten()
            .and_then(|v| match &v.value {
                Some(Value::IntValue(i)) => Some(*i as f32),
                Some(Value::DoubleValue(f)) => Some(*f as f32),
                Some(Value::StringValue(s)) => s.parse().ok(),
                _ => None,
            }) {
            Some(p) => (p, scaled_rate(p.max(0.0))),
            None => (self.cfg.sampling_percentage, self.scaled_rate),
        };
        if pct >= 100.0 {
            return true;
        }
        if pct <= 0.0 {
            return false;
        }
        let has_trace = trace_id.iter().any(|b| *b != 0);
        let source: Option<Vec<u8>> = if self.cfg.attribute_source == AttributeSource::TraceId
            && (has_trace || self.cfg.from_attribute.is_empty())
        {
            Some(trace_id.to_vec())
        } else {
            attributes::get(attrs, &self.cfg.from_attribute).map(bytes_of)
        };
        let Some(data) = source else {
            return !self.cfg.fail_closed;
        };
        match self.mode {
            Mode::HashSeed => hash14(self.cfg.hash_seed, &data) < scaled,
            Mode::Proportional | Mode::Equalizing => {
                let rnd =
                    if data.len() == 16 && self.cfg.attribute_source == AttributeSource::TraceId {
                        low56(&data)
                    } else {
                        Some(hash_randomness(self.cfg.hash_seed, &data))
                    };
                match rnd {
                    Some(r) => {
                        r >= threshold_for(f64::from(pct) / 100.0, self.cfg.sampling_precision)
                    }
                    None => !self.cfg.fail_closed,
                }
            }
        }
    }

    fn sample(&self, batch: &mut Batch) {
        match batch {
            Batch::Traces(rs) => {
                for r in rs.iter_mut() {
                    for s in r.scope_spans.iter_mut() {
                        s.spans.retain_mut(|span| {
                            self.keep_span(&span.trace_id, &mut span.trace_state, &span.attributes)
                        });
                    }
                    r.scope_spans.retain(|s| !s.spans.is_empty());
                }
                rs.retain(|r| !r.scope_spans.is_empty());
            }
            Batch::Logs(rl) => {
                for r in rl.iter_mut() {
                    for s in r.scope_logs.iter_mut() {
                        s.log_records
                            .retain(|l| self.keep_log(&l.trace_id, &l.attributes));
                    }
                    r.scope_logs.retain(|s| !s.log_records.is_empty());
                }
                rl.retain(|r| !r.scope_logs.is_empty());
            }
            Batch::Metrics(_) => {}
        }
    }
}

#[async_trait]
impl Consumer for Sampler {
    async fn consume(&self, mut batch: Batch) -> Result<(), ConsumeError> {
        self.sample(&mut batch);
        if batch.is_empty() {
            // Like Go's ErrSkipProcessingData: nothing left to send is not an error.
            return Ok(());
        }
        self.next.consume(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Errors;
    use crate::config::Node;
    use crate::processors::attributes::tests::Capture;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    const W3C_EXAMPLE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn tid(hex_id: &str) -> Vec<u8> {
        hex::decode(hex_id).unwrap()
    }

    fn sampler(yaml: &str) -> Sampler {
        let node = Node::parse("t.yaml", yaml).unwrap();
        let mut errors = Errors::default();
        let cfg = registry::check::<SamplerConfig>(
            &node,
            "processors::probabilistic_sampler",
            &mut errors,
        )
        .unwrap_or_else(|| panic!("{:?}", errors.errors));
        Sampler::new(cfg, Arc::new(Capture::default()))
    }

    fn span(trace_id: Vec<u8>) -> Span {
        Span {
            trace_id,
            ..Default::default()
        }
    }

    #[test]
    fn fnv1a_matches_published_vectors() {
        assert_eq!(fnv1a32(&[b""]), 0x811c9dc5);
        assert_eq!(fnv1a32(&[b"a"]), 0xe40c292c);
        assert_eq!(fnv1a32(&[b"foo", b"bar"]), 0xbf9cf968);
    }

    #[test]
    fn hash_seed_buckets_computed_from_the_documented_algorithm() {
        // FNV-1a over 4 LE seed bytes ++ 16 id bytes, low 14 bits; worked out by hand
        // (Python) from the algorithm, not from this code.
        assert_eq!(hash14(0, &tid(W3C_EXAMPLE)), 141);
        assert_eq!(hash14(22, &tid(W3C_EXAMPLE)), 12395);
        assert_eq!(hash14(0, &[0xff; 16]), 5445);
        assert_eq!(hash14(22, &(0u8..16).collect::<Vec<_>>()), 9155);
        // float32 arithmetic as in Go: 25% is exactly a quarter of 2^14.
        assert_eq!(scaled_rate(25.0), 4096);
        assert_eq!(scaled_rate(1.0), 163);
        assert_eq!(scaled_rate(150.0), 16384);
    }

    #[test]
    fn hash_seed_decisions_follow_the_bucket_threshold() {
        let keep = |yaml: &str, id: &str| {
            let s = sampler(yaml);
            let mut sp = span(tid(id));
            s.keep_span(&sp.trace_id.clone(), &mut sp.trace_state, &[])
        };
        // bucket 141: kept at 1% (163), dropped at 0.5% (81).
        assert!(keep(
            "sampling_percentage: 1\nmode: hash_seed\n",
            W3C_EXAMPLE
        ));
        assert!(!keep(
            "sampling_percentage: 0.5\nmode: hash_seed\n",
            W3C_EXAMPLE
        ));
        // seed 22, bucket 12395: kept at 80% (13107), dropped at 75% (12288).
        assert!(keep(
            "sampling_percentage: 80\nhash_seed: 22\n",
            W3C_EXAMPLE
        ));
        assert!(!keep(
            "sampling_percentage: 75\nhash_seed: 22\n",
            W3C_EXAMPLE
        ));
    }

    #[test]
    fn kept_spans_carry_rv_and_th_in_the_tracestate() {
        let s = sampler("sampling_percentage: 25\nhash_seed: 22\n");
        // th for 25%: reject (16384 - 4096) << 42 = 0xc0000000000000.
        let mut kept = None;
        for i in 0..64u8 {
            let id = [i; 16];
            let mut ts = "vendor=x".to_string();
            if s.keep_span(&id, &mut ts, &[]) {
                kept = Some(ts);
                break;
            }
        }
        let ts = kept.expect("some of 64 traces are kept at 25%");
        assert!(ts.starts_with("ot=rv:"), "{ts}");
        assert!(ts.ends_with(";th:c,vendor=x"), "{ts}");
    }

    #[test]
    fn an_unset_mode_is_hash_seed_as_in_go() {
        let s = sampler("sampling_percentage: 50\n");
        assert_eq!(s.mode, Mode::HashSeed);
    }

    #[test]
    fn proportional_mode_uses_the_trace_id_randomness() {
        let s = sampler("sampling_percentage: 50\nmode: proportional\n");
        // Low 56 bits ≥ 2^55 → kept at 50%; below → dropped.
        let mut ts = String::new();
        assert!(s.keep_span(&tid("00000000000000000080000000000000"), &mut ts, &[]));
        assert_eq!(ts, "ot=th:8");
        let mut ts = String::new();
        assert!(!s.keep_span(&tid("0000000000000000007fffffffffffff"), &mut ts, &[]));
        // An incoming 50% threshold halves again to 25% (th:c).
        let mut ts = "ot=th:8".to_string();
        assert!(s.keep_span(&tid("000000000000000000ffffffffffffff"), &mut ts, &[]));
        assert_eq!(ts, "ot=th:c");
    }

    #[test]
    fn sampling_priority_overrides_and_percentages_hold_over_many_traces() {
        let s = sampler("sampling_percentage: 0\n");
        let keep_attr = vec![KeyValue {
            key: "sampling.priority".into(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(1)),
            }),
            ..Default::default()
        }];
        assert!(s.keep_span(&tid(W3C_EXAMPLE), &mut String::new(), &keep_attr));

        let s = sampler("sampling_percentage: 25\nhash_seed: 7\n");
        let kept = (0u32..20_000)
            .filter(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_be_bytes());
                id[12..].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
                s.keep_span(&id, &mut String::new(), &[])
            })
            .count();
        assert!(
            (4_500..5_500).contains(&kept),
            "kept {kept} of 20000 at 25%"
        );
    }

    #[tokio::test]
    async fn a_batch_keeps_its_envelopes_only_where_spans_remain() {
        let capture = Arc::new(Capture::default());
        let node = Node::parse(
            "t.yaml",
            "sampling_percentage: 1\nhash_seed: 0\nmode: hash_seed\n",
        )
        .unwrap();
        let cfg: SamplerConfig = registry::parse(&node, "p").unwrap();
        let s = Sampler::new(cfg, capture.clone());
        let batch = Batch::Traces(vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(tid(W3C_EXAMPLE)), span(vec![0xff; 16])],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        s.consume(batch).await.unwrap();
        let got = capture.0.lock().unwrap().pop().unwrap();
        assert_eq!(
            got.item_count(),
            1,
            "bucket 141 kept, bucket 5445 dropped at 1%"
        );
    }

    #[test]
    fn rejects_negative_and_bad_precision() {
        let node = Node::parse(
            "t.yaml",
            "sampling_percentage: -1\nsampling_precision: 20\n",
        )
        .unwrap();
        let mut errors = Errors::default();
        assert!(registry::check::<SamplerConfig>(&node, "p", &mut errors).is_none());
        assert_eq!(errors.errors.len(), 2, "{:?}", errors.errors);
    }
}
