//! The `jaeger_query` extension, named and configured as Jaeger v2's: Jaeger's HTTP query
//! API (`/api/services`, `/api/operations`, `/api/traces`, `/api/dependencies`, with the
//! same JSON the Jaeger UI and Grafana's Jaeger data source read) and a small trace
//! explorer UI on the same port (16686), over a `jaeger_storage` backend.
//!
//! ```yaml
//! extensions:
//!   jaeger_query:
//!     storage:
//!       traces: lab_store
//!     http:
//!       endpoint: 127.0.0.1:16686
//! ```
//!
//! The UI is plain HTML, CSS and JavaScript compiled into the binary (`ui/`): no build step,
//! nothing fetched from the network. Like Jaeger's, it is a single page answering `/`,
//! `/search`, `/trace/{id}`, `/trace/{a}...{b}` (compare), `/dependencies` and `/monitor`
//! (RED per service and operation, through Jaeger's SPM API: see [`monitor`]).

pub mod monitor;
pub mod params;

use crate::component::{BuildContext, Extension};
use crate::extensions::HttpEndpoint;
use crate::extensions::jaeger_storage::model::{JsonTrace, SpanKind, TraceId, TraceSpans};
use crate::extensions::jaeger_storage::store::LogQuery;
use crate::extensions::jaeger_storage::{find_store, store::MemoryStore};
use crate::registry::{self, ComponentConfig, Decoded, ExtensionFactory};
use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "jaeger_query",
    description: "Jaeger's HTTP query API and a trace explorer UI over a jaeger_storage backend (port 16686)",
    validate: registry::validate::<JaegerQueryConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct JaegerQueryConfig {
    pub storage: StorageConfig,
    pub http: HttpConfig,
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The jaeger_storage backend to read traces from (required).
    pub traces: String,
    /// Jaeger's archive backend. Accepted for compatibility; must name a backend, unused.
    pub traces_archive: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// host:port for the API and the UI. Default 127.0.0.1:16686.
    pub endpoint: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: "127.0.0.1:16686".into(),
        }
    }
}

impl ComponentConfig for JaegerQueryConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.storage.traces.is_empty() {
            v.push((
                "storage",
                "storage.traces is required: the name of a jaeger_storage backend".into(),
            ));
        }
        if let Err(e) = crate::config::endpoint::check_endpoint(&self.http.endpoint) {
            v.push(("http", e));
        }
        v
    }
}

fn build(decoded: &Decoded, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: JaegerQueryConfig = registry::typed::<JaegerQueryConfig>(decoded).clone();
    // The service adds "extensions::<id>" to the error; the key inside it is ours to name.
    let store = find_store(&ctx.host, &cfg.storage.traces)
        .map_err(|e| anyhow::anyhow!("storage::traces: {e}"))?;
    if let Some(archive) = &cfg.storage.traces_archive {
        find_store(&ctx.host, archive)
            .map_err(|e| anyhow::anyhow!("storage::traces_archive: {e}"))?;
    }
    Ok(Arc::new(JaegerQuery {
        id: ctx.id.to_string(),
        endpoint: cfg.http.endpoint,
        store,
        http: HttpEndpoint::default(),
        host: ctx.host,
    }))
}

struct JaegerQuery {
    id: String,
    host: Arc<crate::component::Host>,
    endpoint: String,
    store: Arc<MemoryStore>,
    http: HttpEndpoint,
}

#[async_trait]
impl Extension for JaegerQuery {
    async fn start(&self) -> anyhow::Result<()> {
        self.http
            .start(
                &self.host,
                &self.id,
                &self.endpoint,
                router(self.store.clone()),
            )
            .await?;
        tracing::info!(extension = %self.id, address = %self.endpoint, "trace explorer and Jaeger query API listening");
        Ok(())
    }

    async fn shutdown(&self) {
        self.http.stop();
    }
}

type Store = State<Arc<MemoryStore>>;
type Params = Query<Vec<(String, String)>>;

/// The API and the UI, over one store.
pub fn router(store: Arc<MemoryStore>) -> axum::Router {
    axum::Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .route("/api/metrics/calls", get(metrics_calls))
        .route("/api/metrics/errors", get(metrics_errors))
        .route("/api/metrics/latencies", get(metrics_latencies))
        .route("/api/metrics/minstep", get(metrics_minstep))
        .route("/api/lab/logs", get(logs))
        .route("/api/lab/links/{trace_id}", get(links))
        .route("/api/{*rest}", get(api_not_found))
        .route(
            "/static/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/static/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .fallback(get(index))
        .with_state(store)
}

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const STYLE_CSS: &str = include_str!("ui/style.css");

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Every non-API path answers with the single page, which routes on the client.
async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

/// Jaeger's response envelope.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<ApiError>>,
}

#[derive(Serialize)]
struct ApiError {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn ok<T: Serialize>(data: T, total: usize, errors: Option<Vec<ApiError>>) -> Response {
    let env = Envelope {
        data,
        total,
        limit: 0,
        offset: 0,
        errors,
    };
    match serde_json::to_vec(&env) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode: {e}"),
        ),
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let env = Envelope {
        data: (),
        total: 0,
        limit: 0,
        offset: 0,
        errors: Some(vec![ApiError {
            code: Some(status.as_u16()),
            msg: msg.into(),
            trace_id: None,
        }]),
    };
    json_response(
        status,
        serde_json::to_vec(&env).expect("an error envelope always encodes"),
    )
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Searches and renders on a blocking thread: a scan of a full store or a trace of
/// thousands of spans must not hold up the runtime's other connections.
async fn blocking<F: FnOnce() -> Response + Send + 'static>(f: F) -> Response {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("query failed: {e}"),
        )
    })
}

async fn services(State(store): Store) -> Response {
    let s = store.services();
    let n = s.len();
    ok(s, n, None)
}

async fn service_operations(State(store): Store, Path(service): Path<String>) -> Response {
    let mut names: Vec<String> = store
        .operations(&service, None)
        .into_iter()
        .map(|o| o.name)
        .collect();
    names.dedup();
    let n = names.len();
    ok(names, n, None)
}

async fn operations(State(store): Store, Query(p): Params) -> Response {
    let Some(service) = p
        .iter()
        .rev()
        .find(|(k, v)| k == "service" && !v.is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let kind = match p
        .iter()
        .rev()
        .find(|(k, v)| k == "spanKind" && !v.is_empty())
    {
        None => None,
        Some((_, k)) => match SpanKind::parse(k) {
            Some(k) => Some(k),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unable to parse param 'spanKind': unknown span kind \"{k}\" (server, client, producer, consumer, internal)"
                    ),
                );
            }
        },
    };
    let ops = store.operations(&service.1, kind);
    let n = ops.len();
    ok(ops, n, None)
}

fn traces_response(traces: &[TraceSpans], errors: Option<Vec<ApiError>>) -> Response {
    let data: Vec<JsonTrace> = traces.iter().map(|t| JsonTrace { spans: t }).collect();
    ok(data, traces.len(), errors)
}

async fn search(State(store): Store, Query(p): Params) -> Response {
    let parsed = match params::trace_search(&p, now_us()) {
        Ok(q) => q,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    blocking(move || match parsed {
        params::TraceSearch::Query(q) => traces_response(&store.find_traces(&q), None),
        params::TraceSearch::Ids(ids) => {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                match store.get_trace(id) {
                    Some(t) => found.push(t),
                    None => missing.push(ApiError {
                        code: None,
                        msg: "trace not found".into(),
                        trace_id: Some(id.to_string()),
                    }),
                }
            }
            traces_response(&found, (!missing.is_empty()).then_some(missing))
        }
    })
    .await
}

async fn trace(State(store): Store, Path(id): Path<String>) -> Response {
    let Some(id) = TraceId::parse(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("cannot parse traceID \"{id}\": expected up to 32 hex digits"),
        );
    };
    blocking(move || match store.get_trace(id) {
        Some(t) => traces_response(&[t], None),
        None => error(StatusCode::NOT_FOUND, "trace not found"),
    })
    .await
}

async fn dependencies(State(store): Store, Query(p): Params) -> Response {
    let (start, end) = match params::dependencies_window(&p, now_us()) {
        Ok(w) => w,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let service = p
        .iter()
        .rev()
        .find(|(k, v)| k == "service" && !v.is_empty())
        .map(|(_, v)| v.clone());
    blocking(move || {
        let links: Vec<_> = store
            .dependencies(start, end)
            .into_iter()
            .filter(|l| {
                service
                    .as_ref()
                    .is_none_or(|s| *s == l.parent || *s == l.child)
            })
            .collect();
        let n = links.len();
        ok(links, n, None)
    })
    .await
}

/// The SPM API answers its metric family bare (no envelope), as Jaeger does.
async fn metrics(
    store: Arc<MemoryStore>,
    p: Vec<(String, String)>,
    figure: Result<monitor::Figure, String>,
) -> Response {
    let (q, figure) = match monitor::parse(&p, now_us()).and_then(|q| Ok((q, figure?))) {
        Ok(parsed) => parsed,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    blocking(move || {
        let family = monitor::compute(&store, &q, figure);
        match serde_json::to_vec(&family) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode: {e}"),
            ),
        }
    })
    .await
}

async fn metrics_calls(State(store): Store, Query(p): Params) -> Response {
    metrics(store, p, Ok(monitor::Figure::Calls)).await
}

async fn metrics_errors(State(store): Store, Query(p): Params) -> Response {
    metrics(store, p, Ok(monitor::Figure::Errors)).await
}

async fn metrics_latencies(State(store): Store, Query(p): Params) -> Response {
    let quantile = monitor::parse_quantile(&p).map(monitor::Figure::Latencies);
    metrics(store, p, quantile).await
}

async fn metrics_minstep() -> Response {
    json_response(
        StatusCode::OK,
        format!(
            r#"{{"name":"min_step","type":"GAUGE","help":"the smallest step in ms","metrics":[{{"labels":[],"metricPoints":[{{"gaugeValue":{{"doubleValue":{}}}}}]}}]}}"#,
            monitor::MIN_STEP_MS
        )
        .into_bytes(),
    )
}

/// One log record as `/api/lab/logs` lists it.
#[derive(Serialize)]
struct JsonLog<'a> {
    timestamp: u64,
    service: &'a str,
    level: &'a str,
    message: &'a str,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    #[serde(rename = "spanID", skip_serializing_if = "Option::is_none")]
    span_id: Option<String>,
    fields: &'a [crate::extensions::jaeger_storage::model::KeyValue],
}

/// `/api/lab/logs?service=&text=&level=&lookback=&end=&limit=`: the log records the store
/// holds (with or without a trace), newest first; not in Jaeger, which keeps no logs.
/// `lookback` as the trace search takes it (`15m`, `2d`; default 1h), `end` in µs
/// (default now), `limit` default 100.
/// A trace's root span: the earliest span whose parent is not in the trace.
fn root_of(spans: &TraceSpans) -> Option<&crate::extensions::jaeger_storage::model::Span> {
    spans
        .iter()
        .filter(|s| {
            s.parent_span_id
                .is_none_or(|p| !spans.iter().any(|other| other.span_id == p))
        })
        .min_by_key(|s| s.start_time)
        .map(|s| &**s)
}

#[derive(Serialize)]
struct LinkOut {
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "targetSpanID")]
    target_span_id: String,
    /// Whether the explorer holds the linked trace.
    held: bool,
    #[serde(rename = "rootService", skip_serializing_if = "Option::is_none")]
    root_service: Option<String>,
    #[serde(rename = "rootOperation", skip_serializing_if = "Option::is_none")]
    root_operation: Option<String>,
    #[serde(rename = "targetService", skip_serializing_if = "Option::is_none")]
    target_service: Option<String>,
    #[serde(rename = "targetOperation", skip_serializing_if = "Option::is_none")]
    target_operation: Option<String>,
}

#[derive(Serialize)]
struct LinkingSpan {
    #[serde(rename = "spanID")]
    span_id: String,
    service: String,
    operation: String,
    #[serde(rename = "targetSpanID")]
    target_span_id: String,
}

#[derive(Serialize)]
struct LinkIn {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "rootService")]
    root_service: String,
    #[serde(rename = "rootOperation")]
    root_operation: String,
    spans: Vec<LinkingSpan>,
}

#[derive(Serialize)]
struct TraceLinks {
    #[serde(rename = "traceID")]
    trace_id: String,
    /// Links from this trace's spans to other traces.
    links: Vec<LinkOut>,
    /// Traces whose spans link into this one.
    #[serde(rename = "linkedFrom")]
    linked_from: Vec<LinkIn>,
}

/// `/api/lab/links/{traceID}`: a trace's span links both ways, each end named by the
/// linked trace's root service and operation (Jaeger's API has no such query: a span's
/// links are its FOLLOWS_FROM references, and nothing says who links to a trace).
async fn links(State(store): Store, Path(id): Path<String>) -> Response {
    let Some(id) = TraceId::parse(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("cannot parse traceID \"{id}\": expected up to 32 hex digits"),
        );
    };
    blocking(move || {
        let Some(spans) = store.get_trace(id) else {
            return error(StatusCode::NOT_FOUND, "trace not found");
        };
        let mut out = Vec::new();
        for span in &spans {
            for (trace, target) in &span.links {
                let linked = (*trace != id).then(|| store.get_trace(*trace)).flatten();
                let linked = linked.as_ref().or((*trace == id).then_some(&spans));
                let root = linked.and_then(root_of);
                let target_span = linked.and_then(|l| l.iter().find(|s| s.span_id == *target));
                out.push(LinkOut {
                    span_id: span.span_id.to_string(),
                    trace_id: trace.to_string(),
                    target_span_id: target.to_string(),
                    held: linked.is_some(),
                    root_service: root.map(|r| r.process.service_name.clone()),
                    root_operation: root.map(|r| r.operation_name.clone()),
                    target_service: target_span.map(|t| t.process.service_name.clone()),
                    target_operation: target_span.map(|t| t.operation_name.clone()),
                });
            }
        }
        let linked_from: Vec<LinkIn> = store
            .linked_from(id)
            .into_iter()
            .filter_map(|source| {
                let source_spans = store.get_trace(source)?;
                let root = root_of(&source_spans)?;
                let linking: Vec<LinkingSpan> = source_spans
                    .iter()
                    .flat_map(|s| {
                        s.links
                            .iter()
                            .filter(|(t, _)| *t == id)
                            .map(move |(_, target)| LinkingSpan {
                                span_id: s.span_id.to_string(),
                                service: s.process.service_name.clone(),
                                operation: s.operation_name.clone(),
                                target_span_id: target.to_string(),
                            })
                    })
                    .collect();
                Some(LinkIn {
                    trace_id: source.to_string(),
                    root_service: root.process.service_name.clone(),
                    root_operation: root.operation_name.clone(),
                    spans: linking,
                })
            })
            .collect();
        let total = out.len() + linked_from.len();
        ok(
            TraceLinks {
                trace_id: id.to_string(),
                links: out,
                linked_from,
            },
            total,
            None,
        )
    })
    .await
}

async fn logs(State(store): Store, Query(p): Params) -> Response {
    let window = || -> Result<(u64, u64, usize), String> {
        let end = params::parse_u64(&p, "end")?.unwrap_or_else(now_us);
        let lookback = match params::get(&p, "lookback") {
            Some(v) => params::micros(params::parse_duration("lookback", v)?),
            None => 3_600_000_000,
        };
        let limit = params::parse_u64(&p, "limit")?.unwrap_or(100) as usize;
        Ok((end.saturating_sub(lookback), end, limit))
    };
    let (start, end, limit) = match window() {
        Ok(w) => w,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let q = LogQuery {
        service: params::get(&p, "service").map(str::to_owned),
        text: params::get(&p, "text").map(str::to_owned),
        level: params::get(&p, "level").map(str::to_owned),
        start,
        end,
        limit,
    };
    blocking(move || {
        let found = store.find_logs(&q);
        let data: Vec<JsonLog> = found
            .iter()
            .map(|l| JsonLog {
                timestamp: l.log.timestamp,
                service: &l.service,
                level: &l.level,
                message: l.message(),
                trace_id: l.trace_id.map(|t| t.to_string()),
                span_id: l.span_id.map(|s| s.to_string()),
                fields: &l.log.fields,
            })
            .collect();
        let n = data.len();
        ok(data, n, None)
    })
    .await
}

async fn api_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such API endpoint")
}
