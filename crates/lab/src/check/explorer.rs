//! The running lab's read-only interfaces, as `lab check` queries them: the trace explorer's
//! Jaeger HTTP API on :16686 (the same JSON Jaeger serves, so a check works against either)
//! Prometheus text pages (the gateway's exporter on :8889, the collectors' own metrics on
//! :8888 / :8887) and, when the lab runs it, Prometheus's HTTP API on :9090.

use std::collections::HashMap;

use serde::Deserialize;

pub const EXPLORER: &str = "http://127.0.0.1:16686";
/// The workshop's second backend's explorer (`make workshop` starts it).
pub const VENDOR_EXPLORER: &str = "http://127.0.0.1:16687";
/// The gateway's Prometheus exporter: RED metrics from the SDKs and from spans.
pub const EXPORTER_METRICS: &str = "http://127.0.0.1:8889/metrics";
/// The gateway collector's own metrics.
pub const GATEWAY_METRICS: &str = "http://127.0.0.1:8888/metrics";
/// The agent collector's own metrics.
pub const AGENT_METRICS: &str = "http://127.0.0.1:8887/metrics";
/// Prometheus, started by `lab up` when it is installed.
pub const PROMETHEUS: &str = "http://127.0.0.1:9090";

/// An alert as Prometheus's `/api/v1/alerts` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Alert {
    pub labels: HashMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the trace explorer ({EXPLORER}) does not answer: {}",
        crate::fault::LAB_NOT_RUNNING
    )]
    LabNotRunning,
    #[error("{url}: {message}")]
    Failed { url: String, message: String },
    #[error("{url}: not found")]
    NotFound { url: String },
    #[error(
        "Prometheus ({PROMETHEUS}) does not answer: the lab starts it only when it is installed \
         (sudo apt-get install prometheus), then restart make workshop"
    )]
    PrometheusNotRunning,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<serde_json::Value>>,
}

/// A trace as `/api/traces` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    pub processes: HashMap<String, Process>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(rename = "operationName")]
    pub operation: String,
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Microseconds since the epoch.
    #[serde(rename = "startTime")]
    pub start_us: u64,
    /// Microseconds.
    #[serde(rename = "duration")]
    pub duration_us: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Span events (and log records the explorer attached to the span).
    #[serde(default)]
    pub logs: Vec<Log>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Log {
    #[serde(default)]
    pub fields: Vec<Tag>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "refType")]
    pub ref_type: String,
    #[serde(rename = "traceID", default)]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A trace that links into another, from `/api/lab/links/{trace}`'s `linkedFrom`.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkingTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "rootService")]
    pub root_service: String,
    #[serde(rename = "rootOperation")]
    pub root_operation: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct TraceLinks {
    #[serde(rename = "linkedFrom", default)]
    linked_from: Vec<LinkingTrace>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    #[serde(rename = "serviceName")]
    pub service: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Span {
    /// A tag's value as text (`true`, `42`, `USD`).
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| text(&t.value))
    }

    /// The planted problems and faults that acted on this span: the `fault.name` of each
    /// `fault.injected` event.
    pub fn faults(&self) -> Vec<String> {
        self.logs
            .iter()
            .filter(|l| {
                l.fields
                    .iter()
                    .any(|f| f.key == "event" && f.value == "fault.injected")
            })
            .filter_map(|l| l.fields.iter().find(|f| f.key == "fault.name"))
            .map(|f| text(&f.value))
            .collect()
    }

    /// The span it is a child of (its CHILD_OF reference), if any.
    pub fn parent(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|r| r.ref_type == "CHILD_OF")
            .map(|r| r.span_id.as_str())
    }
}

impl Process {
    pub fn tag(&self, key: &str) -> Option<String> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| text(&t.value))
    }
}

impl Trace {
    pub fn service_of(&self, span: &Span) -> &str {
        self.processes
            .get(&span.process_id)
            .map_or("", |p| p.service.as_str())
    }

    pub fn span(&self, id: &str) -> Option<&Span> {
        self.spans.iter().find(|s| s.span_id == id)
    }

    /// The services with at least one span in the trace.
    pub fn services(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .processes
            .values()
            .map(|p| p.service.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The span whose parent is not in the trace.
    pub fn root(&self) -> Option<&Span> {
        self.spans
            .iter()
            .filter(|s| s.parent().is_none_or(|p| self.span(p).is_none()))
            .min_by_key(|s| s.start_us)
    }

    /// Whether planted problem `scenario` acted on any span of the trace.
    pub fn met(&self, scenario: &str) -> bool {
        self.spans
            .iter()
            .any(|s| s.faults().iter().any(|f| f == scenario))
    }

    /// A SERVER span of `service` (`span.kind=server`).
    pub fn server_span(&self, service: &str) -> Option<&Span> {
        self.spans.iter().find(|s| {
            self.service_of(s) == service && s.tag("span.kind").as_deref() == Some("server")
        })
    }
}

/// Splits `traces` at a fix: those where `planted` holds, and those that started after the
/// last of them (the traces a fix can be judged by), both in the order given.
pub fn before_and_after_fix(
    traces: &[Trace],
    planted: impl Fn(&Trace) -> bool,
) -> (Vec<&Trace>, Vec<&Trace>) {
    let start = |t: &Trace| t.root().map_or(0, |r| r.start_us);
    let before: Vec<&Trace> = traces.iter().filter(|t| planted(t)).collect();
    let last = before.iter().map(|t| start(t)).max();
    let after = match last {
        Some(last) => traces.iter().filter(|t| start(t) > last).collect(),
        None => Vec::new(),
    };
    (before, after)
}

/// A search of `/api/traces`.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery<'a> {
    pub service: &'a str,
    pub operation: Option<&'a str>,
    /// Every pair must be on one span.
    pub tags: Vec<(&'a str, &'a str)>,
    pub limit: usize,
}

/// The HTTP client `lab check` reads the lab with.
#[derive(Debug, Clone)]
pub struct LabApi {
    client: reqwest::Client,
}

impl Default for LabApi {
    fn default() -> Self {
        Self::new()
    }
}

impl LabApi {
    pub fn new() -> Self {
        Self {
            client: crate::fault::client(),
        }
    }

    async fn get_text(&self, url: &str) -> Result<String, ApiError> {
        let response = self.client.get(url).send().await.map_err(|e| {
            if e.is_connect() && url.starts_with(EXPLORER) {
                ApiError::LabNotRunning
            } else if e.is_connect() && url.starts_with(PROMETHEUS) {
                ApiError::PrometheusNotRunning
            } else {
                ApiError::Failed {
                    url: url.to_owned(),
                    message: e.to_string(),
                }
            }
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ApiError::NotFound {
                url: url.to_owned(),
            });
        }
        let body = response.text().await.map_err(|e| ApiError::Failed {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        if !status.is_success() {
            return Err(ApiError::Failed {
                url: url.to_owned(),
                message: format!("HTTP {status}: {}", body.trim()),
            });
        }
        Ok(body)
    }

    async fn get_data<T: serde::de::DeserializeOwned + Default>(
        &self,
        url: &str,
    ) -> Result<T, ApiError> {
        let body = self.get_text(url).await?;
        let envelope: Envelope<T> = serde_json::from_str(&body).map_err(|e| ApiError::Failed {
            url: url.to_owned(),
            message: format!("not the Jaeger API's JSON: {e}"),
        })?;
        if let Some(errors) = envelope.errors.filter(|e| !e.is_empty()) {
            return Err(ApiError::Failed {
                url: url.to_owned(),
                message: serde_json::Value::from(errors).to_string(),
            });
        }
        Ok(envelope.data.unwrap_or_default())
    }

    /// `/api/services`; also how `lab check` tells whether the lab is running.
    pub async fn services(&self) -> Result<Vec<String>, ApiError> {
        self.get_data(&format!("{EXPLORER}/api/services")).await
    }

    /// `/api/services/{service}/operations`: the span names the service has reported.
    pub async fn operations(&self, service: &str) -> Result<Vec<String>, ApiError> {
        self.get_data(&format!(
            "{EXPLORER}/api/services/{}/operations",
            encode(service)
        ))
        .await
    }

    /// `/api/traces?service=..&operation=..&tags=..` over the last hour.
    pub async fn traces(&self, query: &TraceQuery<'_>) -> Result<Vec<Trace>, ApiError> {
        self.traces_at(EXPLORER, query).await
    }

    /// The same search on the explorer at `base` (the lab's, or the second backend's).
    pub async fn traces_at(
        &self,
        base: &str,
        query: &TraceQuery<'_>,
    ) -> Result<Vec<Trace>, ApiError> {
        let mut url = format!(
            "{base}/api/traces?lookback=1h&limit={}&service={}",
            query.limit.max(1),
            encode(query.service)
        );
        if let Some(operation) = query.operation {
            url.push_str(&format!("&operation={}", encode(operation)));
        }
        if !query.tags.is_empty() {
            let tags: serde_json::Map<String, serde_json::Value> = query
                .tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            url.push_str(&format!(
                "&tags={}",
                encode(&serde_json::Value::Object(tags).to_string())
            ));
        }
        self.get_data(&url).await
    }

    /// `/api/traces/{id}`; `None` when the explorer does not have it.
    pub async fn trace(&self, id: &str) -> Result<Option<Trace>, ApiError> {
        match self
            .get_data::<Vec<Trace>>(&format!("{EXPLORER}/api/traces/{}", encode(id)))
            .await
        {
            Ok(traces) => Ok(traces.into_iter().next()),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The traces whose spans link into trace `id` (the explorer's `/api/lab/links`); empty
    /// when it does not hold `id`.
    pub async fn linked_from(&self, id: &str) -> Result<Vec<LinkingTrace>, ApiError> {
        match self
            .get_data::<TraceLinks>(&format!("{EXPLORER}/api/lab/links/{}", encode(id)))
            .await
        {
            Ok(links) => Ok(links.linked_from),
            Err(ApiError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Prometheus's active alerts (pending and firing).
    pub async fn alerts(&self) -> Result<Vec<Alert>, ApiError> {
        #[derive(Deserialize)]
        struct Data {
            alerts: Vec<Alert>,
        }
        let url = format!("{PROMETHEUS}/api/v1/alerts");
        let data: Data = self.prometheus(&url).await?;
        Ok(data.alerts)
    }

    /// The value of a PromQL expression that yields one sample now, `None` when it yields
    /// none.
    pub async fn query(&self, expr: &str) -> Result<Option<f64>, ApiError> {
        #[derive(Deserialize)]
        struct Data {
            result: Vec<Sample>,
        }
        #[derive(Deserialize)]
        struct Sample {
            value: (f64, String),
        }
        let url = format!("{PROMETHEUS}/api/v1/query?query={}", encode(expr));
        let data: Data = self.prometheus(&url).await?;
        Ok(data.result.first().and_then(|s| s.value.1.parse().ok()))
    }

    async fn prometheus<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ApiError> {
        #[derive(Deserialize)]
        struct Answer<T> {
            status: String,
            data: Option<T>,
            error: Option<String>,
        }
        let body = self.get_text(url).await?;
        let answer: Answer<T> = serde_json::from_str(&body).map_err(|e| ApiError::Failed {
            url: url.to_owned(),
            message: format!("not Prometheus's JSON: {e}"),
        })?;
        match (answer.status.as_str(), answer.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(ApiError::Failed {
                url: url.to_owned(),
                message: answer.error.unwrap_or(answer.status),
            }),
        }
    }

    /// A Prometheus text page (`EXPORTER_METRICS`, `GATEWAY_METRICS`, ...).
    pub async fn metrics(&self, url: &str) -> Result<Metrics, ApiError> {
        Ok(Metrics(self.get_text(url).await?))
    }
}

/// A Prometheus text exposition page.
#[derive(Debug, Clone)]
pub struct Metrics(pub String);

impl Metrics {
    /// The samples of `name` whose labels include every `label="value"` given.
    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.0.lines().filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let (label_text, value) = match rest.strip_prefix('{') {
                Some(inner) => inner.rsplit_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let all = labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            let value = value.split_whitespace().next()?.parse().ok()?;
            all.then_some(value)
        })
    }
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_json_parses_with_parents_services_and_typed_tags() {
        let json = r#"{"data":[{"traceID":"ab","spans":[
            {"traceID":"ab","spanID":"01","operationName":"POST /orders","references":[],
             "startTime":10,"duration":500,"tags":[{"key":"span.kind","type":"string","value":"server"}],
             "processID":"p1"},
            {"traceID":"ab","spanID":"02","operationName":"payment.validate",
             "references":[{"refType":"CHILD_OF","traceID":"ab","spanID":"01"}],
             "startTime":20,"duration":5,"tags":[{"key":"payment.valid","type":"bool","value":true},
             {"key":"n","type":"int64","value":3}],"processID":"p2",
             "logs":[{"timestamp":21,"fields":[{"key":"event","type":"string","value":"fault.injected"},
                     {"key":"fault.name","type":"string","value":"span_per_item"}]},
                     {"timestamp":22,"fields":[{"key":"event","type":"string","value":"other"},
                     {"key":"fault.name","type":"string","value":"not_a_fault"}]}]}],
            "processes":{"p1":{"serviceName":"order-service","tags":[]},
                         "p2":{"serviceName":"payment-service","tags":[{"key":"cloud.platform","type":"string","value":"aws_ecs"}]}}}],
            "total":1,"limit":0,"offset":0,"errors":null}"#;
        let envelope: Envelope<Vec<Trace>> = serde_json::from_str(json).unwrap();
        let trace = &envelope.data.unwrap()[0];
        let child = &trace.spans[1];
        assert_eq!(child.parent(), Some("01"));
        assert_eq!(child.tag("payment.valid").as_deref(), Some("true"));
        assert_eq!(child.tag("n").as_deref(), Some("3"));
        assert_eq!(child.faults(), ["span_per_item"]);
        assert!(trace.met("span_per_item") && !trace.met("not_a_fault"));
        assert_eq!(trace.service_of(child), "payment-service");
        assert_eq!(trace.root().unwrap().operation, "POST /orders");
        assert_eq!(trace.services(), ["order-service", "payment-service"]);
        assert_eq!(
            trace.server_span("order-service").unwrap().span_id,
            "01".to_owned()
        );
        assert_eq!(
            trace.processes["p2"].tag("cloud.platform").as_deref(),
            Some("aws_ecs")
        );
    }

    #[test]
    fn metrics_samples_match_name_and_labels() {
        let page = Metrics(
            "# HELP x\nhttp_total{job=\"a\",code=\"200\"} 3\nhttp_total{job=\"b\"} 4\nhttp_total_other 9\nhttp_total 5\n"
                .to_owned(),
        );
        assert_eq!(
            page.samples("http_total", &[("job", "a")])
                .collect::<Vec<_>>(),
            [3.0]
        );
        assert_eq!(page.samples("http_total", &[]).sum::<f64>(), 12.0);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("POST /orders"), "POST%20%2Forders");
        assert_eq!(encode(r#"{"a":"b"}"#), "%7B%22a%22%3A%22b%22%7D");
    }
}
