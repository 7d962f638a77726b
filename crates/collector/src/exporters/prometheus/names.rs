//! OTLP names to Prometheus names, per the OpenTelemetry specification "Prometheus and
//! OpenMetrics Compatibility" (and the Go collector's translator): invalid characters
//! become `_`, the unit becomes a suffix (`ms` → `_milliseconds`, `By` → `_bytes`,
//! `{request}` dropped, `1` → `_ratio` on gauges), monotonic sums end in `_total`.

/// Main units: UCUM code → Prometheus word.
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

/// Denominator units of `x/y`.
fn per_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Splits on anything that is not a letter, digit or `:`, dropping empty pieces.
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !is_name_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Unit suffix tokens for a UCUM unit (annotations in braces removed).
fn unit_tokens(unit: &str, is_gauge: bool) -> Vec<String> {
    let mut u = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => u.push(c),
            _ => {}
        }
    }
    let u = u.trim();
    if u == "1" {
        return if is_gauge {
            vec!["ratio".into()]
        } else {
            Vec::new()
        };
    }
    let (main, per) = match u.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (u, None),
    };
    let mut out = Vec::new();
    if !main.is_empty() && main != "1" {
        out.extend(tokens(unit_word(main).unwrap_or(main)));
    }
    if let Some(p) = per.filter(|p| !p.is_empty()) {
        out.push("per".into());
        out.extend(tokens(per_word(p).unwrap_or(p)));
    }
    out
}

/// The Prometheus metric (family) name, without `_total` for counters when `counter_suffix`
/// is false (OpenMetrics names the family without it).
pub fn metric_name(
    name: &str,
    unit: &str,
    namespace: &str,
    is_counter: bool,
    is_gauge: bool,
    add_suffixes: bool,
) -> String {
    let mut toks = tokens(name);
    if add_suffixes {
        for t in unit_tokens(unit, is_gauge) {
            if !toks.contains(&t) {
                toks.push(t);
            }
        }
        if is_counter {
            toks.retain(|t| t != "total");
        }
    }
    if !namespace.is_empty() {
        let mut ns = tokens(namespace);
        ns.extend(toks);
        toks = ns;
    }
    let mut out = toks.join("_");
    if out.is_empty() {
        out = "_".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A Prometheus label name for an attribute key: invalid characters become `_`, a leading
/// digit gets `key_`, and a single leading `_` gets `key` (names starting `__` are
/// reserved for Prometheus itself).
pub fn label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        return "key_".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_compatibility_spec() {
        assert_eq!(
            metric_name("traces.span.metrics.calls", "", "", true, false, true),
            "traces_span_metrics_calls"
        );
        assert_eq!(
            metric_name("traces.span.metrics.duration", "ms", "", false, false, true),
            "traces_span_metrics_duration_milliseconds"
        );
        assert_eq!(
            metric_name("http.server.request.duration", "s", "", false, false, true),
            "http_server_request_duration_seconds"
        );
        assert_eq!(
            metric_name("process.memory.usage", "By", "", false, true, true),
            "process_memory_usage_bytes"
        );
        assert_eq!(
            metric_name("orders.created", "{order}", "", true, false, true),
            "orders_created"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", "", false, true, true),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("speed", "m/s", "", false, true, true),
            "speed_meters_per_second"
        );
        assert_eq!(
            metric_name("requests.total", "", "", true, false, true),
            "requests"
        );
        assert_eq!(
            metric_name("latency_seconds", "s", "lab", false, false, true),
            "lab_latency_seconds"
        );
        assert_eq!(metric_name("2xx", "", "", false, true, false), "_2xx");
    }

    #[test]
    fn labels_are_sanitised() {
        assert_eq!(label_name("service.name"), "service_name");
        assert_eq!(
            label_name("http.response.status_code"),
            "http_response_status_code"
        );
        assert_eq!(label_name("0day"), "key_0day");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
    }
}
