//! The axum server layer: one SERVER span per request, continuing the caller's trace, and
//! the HTTP server metrics, both to the stable HTTP semantic conventions.
//!
//! Apply it with `Router::layer` *after* all routes are added (a route-level layer sees
//! axum's `MatchedPath`, which gives `http.route` and the span name `"{METHOD} {route}"`),
//! and serve the router with [`serve`] so the layer sees the peer's address
//! (`client.address`). What the conventions ask for, and this layer does:
//! - Only 5xx responses mark the span as an error; a 4xx is the client's mistake.
//! - A method outside the RFC 9110 set (plus PATCH) is recorded as `_OTHER`, with the
//!   method as sent in `http.request.method_original` on the span: a client inventing
//!   methods must not invent metric series.
//! - A request whose future is dropped before it answers (the client hung up or timed
//!   out) still ends its span, leaves `http.server.active_requests` where it was and is
//!   recorded in the duration histogram, with `error.type = "cancelled"` and no status code.
//! - Health checks (`/healthz` unless `UNTRACED_PATHS` says otherwise) are neither traced
//!   nor counted: a kubelet probing every few seconds would otherwise be most of the
//!   traces and RED points of an idle service.
//!
//! The caller's baggage entries named in [`propagation::SPAN_BAGGAGE_KEYS`] are recorded on
//! the span.
//!
//! The span is made with the OpenTelemetry API, not as a `tracing` span: every request of
//! every service pays for it, and a `tracing` span costs a registry slot, a field visit per
//! attribute in each layer and an enter and exit on every poll on top of the OpenTelemetry
//! span it becomes (see the crate doc on cost). The handler runs with the span's context
//! current (`FutureExt::with_context`), so `tracing` spans opened inside it, log records
//! and outgoing requests are its children all the same.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::Response;
use opentelemetry::context::FutureExt as _;
use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::{DURATION_BUCKETS_SECONDS, propagation};

/// Paths that are neither traced nor counted unless `UNTRACED_PATHS` (a comma-separated
/// list of exact paths; empty to trace everything) says otherwise.
pub const DEFAULT_UNTRACED_PATHS: [&str; 1] = ["/healthz"];

/// The instrumentation scope of the server spans and metrics.
const INSTRUMENTATION_SCOPE: &str = "telemetry.http_server";

/// `error.type` of a request whose future was dropped before a response was produced.
pub const CANCELLED: &str = "cancelled";

/// The layer; create it after [`crate::init`] so its instruments come from the real meter.
pub fn layer() -> HttpServerLayer {
    HttpServerLayer::new()
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish. It passes each connection's peer address to the handlers, which is how the
/// server layer knows `client.address`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The methods the conventions know by name; every other is `_OTHER`.
pub(crate) fn known_method(method: &http::Method) -> Option<&'static str> {
    Some(match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => return None,
    })
}

/// `network.protocol.version` as the conventions spell it.
pub(crate) fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "_OTHER",
    }
}

/// `server.address` and `server.port` from the request's authority (HTTP/2 `:authority`
/// or an absolute URI) or its `Host` header. An IPv6 host is given without its brackets;
/// a missing port is the scheme's default.
pub fn server_address(request: &http::request::Parts) -> Option<(String, u16)> {
    let authority = match request.uri.authority() {
        Some(authority) => authority.clone(),
        None => request
            .headers
            .get(http::header::HOST)?
            .to_str()
            .ok()?
            .parse::<http::uri::Authority>()
            .ok()?,
    };
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host.to_owned(), authority.port_u16().unwrap_or(80)))
}

#[derive(Clone)]
struct ServerMetrics {
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
}

/// A tower layer for axum routers; see the module docs.
#[derive(Clone)]
pub struct HttpServerLayer {
    tracer: Arc<BoxedTracer>,
    metrics: ServerMetrics,
    untraced: Arc<[String]>,
}

impl HttpServerLayer {
    /// The layer with the untraced paths from `UNTRACED_PATHS`, or
    /// [`DEFAULT_UNTRACED_PATHS`] when it is not set.
    pub fn new() -> Self {
        let untraced: Vec<String> = match std::env::var("UNTRACED_PATHS") {
            Ok(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(_) => DEFAULT_UNTRACED_PATHS.map(str::to_owned).to_vec(),
        };
        let meter = global::meter(INSTRUMENTATION_SCOPE);
        Self {
            tracer: Arc::new(global::tracer(INSTRUMENTATION_SCOPE)),
            metrics: ServerMetrics {
                duration: meter
                    .f64_histogram("http.server.request.duration")
                    .with_unit("s")
                    .with_description("Duration of HTTP server requests.")
                    .with_boundaries(DURATION_BUCKETS_SECONDS.to_vec())
                    .build(),
                active: meter
                    .i64_up_down_counter("http.server.active_requests")
                    .with_unit("{request}")
                    .with_description("Number of active HTTP server requests.")
                    .build(),
            },
            untraced: untraced.into(),
        }
    }

    /// The same layer with exactly these paths untraced (none: trace everything).
    pub fn untraced_paths<P: Into<String>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.untraced = paths.into_iter().map(Into::into).collect();
        self
    }
}

impl Default for HttpServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> tower::Layer<S> for HttpServerLayer {
    type Service = HttpServerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpServerService {
            inner,
            tracer: self.tracer.clone(),
            metrics: self.metrics.clone(),
            untraced: self.untraced.clone(),
        }
    }
}

/// The service [`HttpServerLayer`] wraps around each route.
#[derive(Clone)]
pub struct HttpServerService<S> {
    inner: S,
    tracer: Arc<BoxedTracer>,
    metrics: ServerMetrics,
    untraced: Arc<[String]>,
}

impl<S> tower::Service<Request> for HttpServerService<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready is the one that must serve this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self.untraced.iter().any(|p| p == req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        let (parts, body) = req.into_parts();
        let request = InFlight::start(&parts, &self.tracer, self.metrics.clone());
        let req = Request::from_parts(parts, body);
        let cx = request.cx.clone();
        Box::pin(
            async move {
                let result = inner.call(req).await;
                request.finish(&result);
                result
            }
            .with_context(cx),
        )
    }
}

/// One request between its arrival and its response. If it is dropped unfinished, the
/// request was cancelled: `Drop` ends it so that nothing leaks.
struct InFlight {
    /// The caller's context with this request's span in it: what the handler runs in.
    cx: opentelemetry::Context,
    metrics: ServerMetrics,
    /// The duration histogram's attributes known before the response.
    attributes: Vec<KeyValue>,
    active_attributes: [KeyValue; 2],
    started: Instant,
    finished: bool,
}

impl InFlight {
    fn start(parts: &http::request::Parts, tracer: &BoxedTracer, metrics: ServerMetrics) -> Self {
        let method = known_method(&parts.method);
        let method_label = method.unwrap_or("_OTHER");
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        // The conventions name a span of an unknown method "HTTP", not "_OTHER".
        let span_method = method.unwrap_or("HTTP");
        let span_name = match route {
            Some(route) => format!("{span_method} {route}"),
            None => span_method.to_owned(),
        };
        let version = protocol_version(parts.version);
        let parent = propagation::extract(&parts.headers);

        let mut span_attributes = Vec::with_capacity(16);
        span_attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_label));
        if method.is_none() {
            span_attributes.push(KeyValue::new(
                semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                parts.method.as_str().to_owned(),
            ));
        }
        if let Some(route) = route {
            span_attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_owned()));
        }
        span_attributes.push(KeyValue::new(
            semconv::URL_PATH,
            parts.uri.path().to_owned(),
        ));
        if let Some(query) = parts.uri.query() {
            span_attributes.push(KeyValue::new(semconv::URL_QUERY, query.to_owned()));
        }
        span_attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
        if let Some((host, port)) = server_address(parts) {
            span_attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host));
            span_attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            let ip: opentelemetry::StringValue = peer.ip().to_string().into();
            span_attributes.push(KeyValue::new(semconv::CLIENT_ADDRESS, ip.clone()));
            span_attributes.push(KeyValue::new(semconv::NETWORK_PEER_ADDRESS, ip));
            span_attributes.push(KeyValue::new(
                semconv::NETWORK_PEER_PORT,
                i64::from(peer.port()),
            ));
        }
        span_attributes.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
        if let Some(agent) = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            span_attributes.push(KeyValue::new(
                semconv::USER_AGENT_ORIGINAL,
                agent.to_owned(),
            ));
        }
        span_attributes.extend(propagation::baggage_attributes(&parent));
        let span = tracer
            .span_builder(span_name)
            .with_kind(SpanKind::Server)
            .with_attributes(span_attributes)
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);

        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_label));
        attributes.push(KeyValue::new(semconv::URL_SCHEME, "http"));
        attributes.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
        if let Some(route) = route {
            attributes.push(KeyValue::new(semconv::HTTP_ROUTE, route.to_owned()));
        }
        let active_attributes = [
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_label),
            KeyValue::new(semconv::URL_SCHEME, "http"),
        ];
        metrics.active.add(1, &active_attributes);
        Self {
            cx,
            metrics,
            attributes,
            active_attributes,
            started: Instant::now(),
            finished: false,
        }
    }

    fn finish<E>(mut self, result: &Result<Response, E>) {
        match result {
            Ok(response) => {
                let status = i64::from(response.status().as_u16());
                self.cx
                    .span()
                    .set_attribute(KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, status));
                self.attributes
                    .push(KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, status));
                if response.status().is_server_error() {
                    self.fail(response.status().as_str().to_owned(), true);
                }
            }
            Err(_) => self.fail("_OTHER".to_owned(), true),
        }
        self.end();
    }

    fn fail(&mut self, error_type: String, is_error: bool) {
        let span = self.cx.span();
        if is_error {
            // The conventions leave the description empty when the status code says it all.
            span.set_status(Status::error(""));
        }
        let error_type: opentelemetry::StringValue = error_type.into();
        span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
        self.attributes
            .push(KeyValue::new(semconv::ERROR_TYPE, error_type));
    }

    fn end(&mut self) {
        self.finished = true;
        self.metrics.active.add(-1, &self.active_attributes);
        self.metrics
            .duration
            .record(self.started.elapsed().as_secs_f64(), &self.attributes);
        self.cx.span().end();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            // The client went away; the server did not fail, so the span status stays
            // unset (as for a 4xx), but the reason there is no status code is recorded.
            self.fail(CANCELLED.to_owned(), false);
            self.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, host: Option<&str>) -> http::request::Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn server_address_reads_host_with_and_without_port_and_ipv6() {
        assert_eq!(
            server_address(&parts("/x", Some("shop.example:8080"))),
            Some(("shop.example".to_owned(), 8080))
        );
        assert_eq!(
            server_address(&parts("/x", Some("shop.example"))),
            Some(("shop.example".to_owned(), 80))
        );
        assert_eq!(
            server_address(&parts("/x", Some("[::1]:8082"))),
            Some(("::1".to_owned(), 8082))
        );
        assert_eq!(
            server_address(&parts("http://[2001:db8::7]/x", None)),
            Some(("2001:db8::7".to_owned(), 80))
        );
        assert_eq!(server_address(&parts("/x", None)), None);
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(known_method(&http::Method::GET), Some("GET"));
        assert_eq!(known_method(&http::Method::PATCH), Some("PATCH"));
        let propfind = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(known_method(&propfind), None);
    }
}
