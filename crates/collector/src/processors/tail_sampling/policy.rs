//! Tail-sampling policies, configured as the Go processor configures them:
//! `{name, type, <type>: {...}}`.

use crate::exporters::debug::any_value_text;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, status::StatusCode};
use serde::Deserialize;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A name for logs and errors.
    pub name: String,
    /// always_sample | latency | status_code | probabilistic | string_attribute |
    /// rate_limiting | and
    #[serde(rename = "type")]
    pub kind: String,
    pub latency: Option<LatencyConfig>,
    pub status_code: Option<StatusCodeConfig>,
    pub probabilistic: Option<ProbabilisticConfig>,
    pub string_attribute: Option<StringAttributeConfig>,
    pub rate_limiting: Option<RateLimitingConfig>,
    pub and: Option<AndConfig>,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// Sample traces lasting at least this many ms (first span start to last span end).
    pub threshold_ms: u64,
    /// And at most this many ms (0 = no upper bound).
    pub upper_threshold_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StatusCodeConfig {
    /// Sample traces with a span in one of these statuses: ERROR, OK, UNSET.
    pub status_codes: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProbabilisticConfig {
    /// Mixed into the trace-id hash, so several collectors can sample differently.
    pub hash_salt: String,
    /// Percentage of traces to sample, 0–100.
    pub sampling_percentage: f64,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StringAttributeConfig {
    /// Attribute key, looked up on spans and on their resource.
    pub key: String,
    /// Values that sample the trace.
    pub values: Vec<String>,
    /// Treat values as regular expressions.
    pub enabled_regex_matching: bool,
    /// Sample traces that do NOT match.
    pub invert_match: bool,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitingConfig {
    /// Spans per second that may be sampled by this policy.
    pub spans_per_second: u64,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AndConfig {
    /// All of these must sample the trace.
    pub and_sub_policy: Vec<PolicyConfig>,
}

/// What policies look at: every span of one trace with its resource attributes.
pub struct TraceView<'a> {
    pub spans: Vec<(&'a [KeyValue], &'a Span)>,
}

impl<'a> TraceView<'a> {
    pub fn new(rs: &'a [ResourceSpans]) -> Self {
        let mut spans = Vec::new();
        for r in rs {
            let res: &[KeyValue] = r
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            for s in r.scope_spans.iter().flat_map(|s| &s.spans) {
                spans.push((res, s));
            }
        }
        TraceView { spans }
    }
}

pub enum Policy {
    Always,
    Latency {
        min_ns: u64,
        max_ns: u64,
    },
    Status(Vec<i32>),
    Probabilistic {
        salt: String,
        threshold: u64,
    },
    StringAttr {
        key: String,
        values: Vec<String>,
        regexes: Vec<regex::Regex>,
        invert: bool,
    },
    RateLimit {
        per_second: u64,
        window: Mutex<(Instant, u64)>,
    },
    And(Vec<Policy>),
}

impl PolicyConfig {
    /// Checks the policy (and sub-policies) without building it.
    pub fn check(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    pub fn compile(&self) -> Result<Policy, String> {
        let missing = |k: &str| format!("type {} needs a `{k}:` section", self.kind);
        Ok(match self.kind.as_str() {
            "always_sample" => Policy::Always,
            "latency" => {
                let c = self.latency.as_ref().ok_or_else(|| missing("latency"))?;
                if c.threshold_ms == 0 && c.upper_threshold_ms == 0 {
                    return Err("latency needs threshold_ms (and/or upper_threshold_ms)".into());
                }
                let max_ns = if c.upper_threshold_ms == 0 {
                    u64::MAX
                } else {
                    c.upper_threshold_ms * 1_000_000
                };
                Policy::Latency {
                    min_ns: c.threshold_ms * 1_000_000,
                    max_ns,
                }
            }
            "status_code" => {
                let c = self
                    .status_code
                    .as_ref()
                    .ok_or_else(|| missing("status_code"))?;
                if c.status_codes.is_empty() {
                    return Err("status_codes must list at least one of ERROR, OK, UNSET".into());
                }
                let codes = c
                    .status_codes
                    .iter()
                    .map(|s| match s.as_str() {
                        "ERROR" => Ok(StatusCode::Error as i32),
                        "OK" => Ok(StatusCode::Ok as i32),
                        "UNSET" => Ok(StatusCode::Unset as i32),
                        other => Err(format!(
                            "unknown status code \"{other}\"; use ERROR, OK or UNSET"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Policy::Status(codes)
            }
            "probabilistic" => {
                let c = self
                    .probabilistic
                    .as_ref()
                    .ok_or_else(|| missing("probabilistic"))?;
                if !(0.0..=100.0).contains(&c.sampling_percentage) {
                    return Err(format!(
                        "sampling_percentage must be between 0 and 100, found {}",
                        c.sampling_percentage
                    ));
                }
                Policy::Probabilistic {
                    salt: c.hash_salt.clone(),
                    threshold: (c.sampling_percentage / 100.0 * u64::MAX as f64) as u64,
                }
            }
            "string_attribute" => {
                let c = self
                    .string_attribute
                    .as_ref()
                    .ok_or_else(|| missing("string_attribute"))?;
                if c.key.is_empty() || c.values.is_empty() {
                    return Err("string_attribute needs key and values".into());
                }
                let regexes = if c.enabled_regex_matching {
                    c.values
                        .iter()
                        .map(|v| {
                            regex::Regex::new(v)
                                .map_err(|e| format!("bad regular expression \"{v}\": {e}"))
                        })
                        .collect::<Result<Vec<_>, _>>()?
                } else {
                    Vec::new()
                };
                Policy::StringAttr {
                    key: c.key.clone(),
                    values: c.values.clone(),
                    regexes,
                    invert: c.invert_match,
                }
            }
            "rate_limiting" => {
                let c = self
                    .rate_limiting
                    .as_ref()
                    .ok_or_else(|| missing("rate_limiting"))?;
                if c.spans_per_second == 0 {
                    return Err("spans_per_second must be at least 1".into());
                }
                Policy::RateLimit {
                    per_second: c.spans_per_second,
                    window: Mutex::new((Instant::now(), 0)),
                }
            }
            "and" => {
                let c = self.and.as_ref().ok_or_else(|| missing("and"))?;
                if c.and_sub_policy.is_empty() {
                    return Err("and_sub_policy must list at least one policy".into());
                }
                Policy::And(
                    c.and_sub_policy
                        .iter()
                        .map(|p| {
                            p.compile()
                                .map_err(|e| format!("sub-policy \"{}\": {e}", p.name))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            "" => return Err("type is required".into()),
            other => {
                return Err(format!(
                    "unknown policy type \"{other}\"; known types: always_sample, latency, status_code, probabilistic, string_attribute, rate_limiting, and"
                ));
            }
        })
    }
}

/// FNV-1a, 64 bit.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in *p {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

impl Policy {
    pub fn samples(&self, t: &TraceView) -> bool {
        match self {
            Policy::Always => true,
            Policy::Latency { min_ns, max_ns } => {
                let start = t
                    .spans
                    .iter()
                    .map(|(_, s)| s.start_time_unix_nano)
                    .min()
                    .unwrap_or(0);
                let end = t
                    .spans
                    .iter()
                    .map(|(_, s)| s.end_time_unix_nano)
                    .max()
                    .unwrap_or(0);
                let d = end.saturating_sub(start);
                d >= *min_ns && d <= *max_ns
            }
            Policy::Status(codes) => t
                .spans
                .iter()
                .any(|(_, s)| codes.contains(&s.status.as_ref().map(|st| st.code).unwrap_or(0))),
            Policy::Probabilistic { salt, threshold } => {
                let Some((_, s)) = t.spans.first() else {
                    return false;
                };
                fnv1a(&[salt.as_bytes(), &s.trace_id]) <= *threshold && *threshold > 0
            }
            Policy::StringAttr {
                key,
                values,
                regexes,
                invert,
            } => {
                let matches = |v: &str| {
                    if regexes.is_empty() {
                        values.iter().any(|x| x == v)
                    } else {
                        regexes.iter().any(|r| r.is_match(v))
                    }
                };
                let found = t.spans.iter().any(|(res, s)| {
                    s.attributes.iter().chain(res.iter()).any(|kv| {
                        kv.key == *key
                            && kv
                                .value
                                .as_ref()
                                .is_some_and(|v| matches(&any_value_text(v)))
                    })
                });
                found != *invert
            }
            Policy::RateLimit { per_second, window } => {
                let n = t.spans.len() as u64;
                let mut w = window.lock().expect("rate window");
                if w.0.elapsed().as_secs() >= 1 {
                    *w = (Instant::now(), 0);
                }
                if w.1 + n <= *per_second {
                    w.1 += n;
                    true
                } else {
                    false
                }
            }
            Policy::And(subs) => subs.iter().all(|p| p.samples(t)),
        }
    }
}
