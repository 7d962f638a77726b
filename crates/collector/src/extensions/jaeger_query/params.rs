//! Query-string parsing for Jaeger's HTTP API, with Jaeger's parameter names, defaults and
//! error messages (`parameter 'service' is required`, `unable to parse param 'start': ...`).

use crate::config::parse_go_duration;
use crate::extensions::jaeger_storage::model::{SpanKind, TraceId};
use crate::extensions::jaeger_storage::store::TraceQuery;
use std::time::Duration;

/// Jaeger's default trace search window when neither `start` nor `lookback` is given.
const DEFAULT_TRACE_LOOKBACK: Duration = Duration::from_secs(2 * 24 * 3600);
/// Jaeger's default dependencies window.
const DEFAULT_DEPENDENCY_LOOKBACK: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_LIMIT: usize = 100;

/// A parsed `/api/traces` request: explicit trace ids, or a search.
#[derive(Debug, PartialEq)]
pub enum TraceSearch {
    Ids(Vec<TraceId>),
    Query(TraceQuery),
}

pub(crate) fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

pub(crate) fn all<'a>(
    params: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    params
        .iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn parse_u64(params: &[(String, String)], name: &str) -> Result<Option<u64>, String> {
    get(params, name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|e| format!("unable to parse param '{name}': {e} (\"{v}\")"))
        })
        .transpose()
}

/// Durations as Go writes them (`100ms`, `1.5s`), plus `d` for days as the lookback menus use.
pub(crate) fn parse_duration(name: &str, v: &str) -> Result<Duration, String> {
    let v = v.trim();
    if let Some(days) = v.strip_suffix('d')
        && let Ok(n) = days.parse::<f64>()
        && n >= 0.0
    {
        return Ok(Duration::from_secs_f64(n * 86_400.0));
    }
    parse_go_duration(v).map_err(|e| format!("unable to parse param '{name}': {e}"))
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Parses `/api/traces` parameters; `now_us` is the current time in microseconds.
pub fn trace_search(params: &[(String, String)], now_us: u64) -> Result<TraceSearch, String> {
    let mut ids = Vec::new();
    for v in all(params, "traceID") {
        ids.push(
            TraceId::parse(v.trim()).ok_or_else(|| {
                format!("cannot parse traceID param: \"{v}\" is not a hex trace id")
            })?,
        );
    }
    let end = parse_u64(params, "end")?.unwrap_or(now_us);
    let start = match parse_u64(params, "start")? {
        Some(s) => s,
        None => {
            let lookback = match get(params, "lookback") {
                // The Jaeger UI sends lookback=custom together with start and end.
                Some("custom") | None => DEFAULT_TRACE_LOOKBACK,
                Some(v) => parse_duration("lookback", v)?,
            };
            end.saturating_sub(micros(lookback))
        }
    };
    let limit = match get(params, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|e| format!("unable to parse param 'limit': {e} (\"{v}\")"))?;
            if n <= 0 { DEFAULT_LIMIT } else { n as usize }
        }
    };
    let duration_min = get(params, "minDuration")
        .map(|v| parse_duration("minDuration", v).map(micros))
        .transpose()?;
    let duration_max = get(params, "maxDuration")
        .map(|v| parse_duration("maxDuration", v).map(micros))
        .transpose()?;
    if let (Some(min), Some(max)) = (duration_min, duration_max)
        && max < min
    {
        return Err("'maxDuration' should be greater than 'minDuration'".into());
    }
    let mut tags = Vec::new();
    for t in all(params, "tag") {
        match t.split_once(':') {
            Some((k, v)) => tags.push((k.to_string(), v.to_string())),
            None => {
                return Err(format!(
                    "malformed 'tag' parameter, expecting key:value, received: {t}"
                ));
            }
        }
    }
    for t in all(params, "tags") {
        tags.extend(parse_tags(t)?);
    }
    let span_kind = match get(params, "spanKind") {
        None => None,
        Some(k) => Some(SpanKind::parse(k).ok_or_else(|| {
            format!("unable to parse param 'spanKind': unknown span kind \"{k}\" (server, client, producer, consumer, internal)")
        })?),
    };
    if !ids.is_empty() {
        return Ok(TraceSearch::Ids(ids));
    }
    let service = get(params, "service").ok_or("parameter 'service' is required")?;
    Ok(TraceSearch::Query(TraceQuery {
        service: service.to_string(),
        operation: get(params, "operation").map(str::to_string),
        span_kind,
        tags,
        start_min: start,
        start_max: end,
        duration_min,
        duration_max,
        limit,
    }))
}

/// The `tags` parameter: a JSON object (what the Jaeger UI and Grafana send) or logfmt
/// (`error=true http.status_code=500`, what people type).
pub fn parse_tags(s: &str) -> Result<Vec<(String, String)>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    if t.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(t)
            .map_err(|e| format!("malformed 'tags' parameter, cannot unmarshal JSON: {e}"))?;
        return map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Ok((k, v.to_string())),
                other => Err(format!(
                    "malformed 'tags' parameter: the value of \"{k}\" must be a string, not {other}"
                )),
            })
            .collect();
    }
    parse_logfmt(t)
}

/// `key=value key2="quoted value"`.
fn parse_logfmt(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!(
                "malformed 'tags' parameter: expected key=value pairs (logfmt) or a JSON object, near \"{key}\""
            ));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(format!(
                    "malformed 'tags' parameter: unterminated quote in the value of \"{key}\""
                ));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// `/api/dependencies`: `endTs` in milliseconds (default now) and `lookback` in
/// milliseconds (default 24h). Returns the window in microseconds.
pub fn dependencies_window(params: &[(String, String)], now_us: u64) -> Result<(u64, u64), String> {
    let end_us = match parse_u64(params, "endTs")? {
        Some(ms) => ms.saturating_mul(1000),
        None => now_us,
    };
    let lookback_us = match parse_u64(params, "lookback")? {
        Some(ms) => ms.saturating_mul(1000),
        None => micros(DEFAULT_DEPENDENCY_LOOKBACK),
    };
    Ok((end_us.saturating_sub(lookback_us), end_us))
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

    fn query(pairs: &[(&str, &str)]) -> Result<TraceQuery, String> {
        match trace_search(&p(pairs), 10_000_000_000)? {
            TraceSearch::Query(q) => Ok(q),
            TraceSearch::Ids(_) => panic!("expected a query"),
        }
    }

    #[test]
    fn search_parameters_parse_as_jaeger_reads_them() {
        let q = query(&[
            ("service", "order-service"),
            ("operation", "POST /orders"),
            ("start", "1000"),
            ("end", "2000"),
            ("minDuration", "100ms"),
            ("maxDuration", "1.5s"),
            ("limit", "20"),
            ("tags", r#"{"error":"true"}"#),
            ("tag", "http.route:/orders/{id}"),
        ])
        .unwrap();
        assert_eq!(q.service, "order-service");
        assert_eq!(q.operation.as_deref(), Some("POST /orders"));
        assert_eq!((q.start_min, q.start_max), (1000, 2000));
        assert_eq!(q.duration_min, Some(100_000));
        assert_eq!(q.duration_max, Some(1_500_000));
        assert_eq!(q.limit, 20);
        assert!(q.tags.contains(&("error".into(), "true".into())));
        assert!(
            q.tags
                .contains(&("http.route".into(), "/orders/{id}".into()))
        );
    }

    #[test]
    fn lookback_sets_the_start_when_start_is_absent() {
        let q = query(&[("service", "s"), ("lookback", "1h"), ("end", "7200000000")]).unwrap();
        assert_eq!(q.start_min, 3_600_000_000);
        let q = query(&[
            ("service", "s"),
            ("lookback", "2d"),
            ("end", "172800000000"),
        ])
        .unwrap();
        assert_eq!(q.start_min, 0);
    }

    #[test]
    fn logfmt_tags_with_quotes() {
        assert_eq!(
            parse_tags(r#"error=true http.status_code=500 msg="a b \"c\"""#).unwrap(),
            vec![
                ("error".to_string(), "true".to_string()),
                ("http.status_code".to_string(), "500".to_string()),
                ("msg".to_string(), "a b \"c\"".to_string()),
            ]
        );
        assert!(parse_tags("error").is_err());
        assert!(parse_tags("a=\"open").is_err());
        assert!(parse_tags("{not json").is_err());
    }

    #[test]
    fn bad_parameters_have_jaegers_messages() {
        assert_eq!(query(&[]).unwrap_err(), "parameter 'service' is required");
        assert!(
            query(&[("service", "s"), ("start", "yesterday")])
                .unwrap_err()
                .starts_with("unable to parse param 'start'")
        );
        assert!(
            query(&[("service", "s"), ("minDuration", "100")])
                .unwrap_err()
                .starts_with("unable to parse param 'minDuration'")
        );
        assert_eq!(
            query(&[
                ("service", "s"),
                ("minDuration", "2s"),
                ("maxDuration", "1s")
            ])
            .unwrap_err(),
            "'maxDuration' should be greater than 'minDuration'"
        );
        assert!(query(&[("service", "s"), ("limit", "ten")]).is_err());
        assert!(trace_search(&p(&[("traceID", "zz")]), 0).is_err());
    }

    #[test]
    fn dependencies_window_is_in_milliseconds() {
        assert_eq!(
            dependencies_window(&p(&[("endTs", "5000"), ("lookback", "2000")]), 0).unwrap(),
            (3_000_000, 5_000_000)
        );
        assert!(dependencies_window(&p(&[("endTs", "soon")]), 0).is_err());
    }
}
