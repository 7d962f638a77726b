//! The axum server layer: one SERVER span per request, continuing the caller's trace, and
//! the HTTP server RED metrics.
//!
//! Apply it with `Router::layer` *after* all routes are added (a route-level layer sees
//! axum's `MatchedPath`, which gives `http.route` and the span name `"{METHOD} {route}"`).
//! Only 5xx responses mark the span as an error; a 4xx is the client's mistake (HTTP
//! semantic conventions). Baggage `customer.tier` from the caller is recorded on the span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::{KeyValue, global};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{DURATION_BUCKETS_SECONDS, propagation};

/// Baggage entries copied onto the server span as attributes of the same name.
const BAGGAGE_ATTRIBUTES: [&str; 1] = ["customer.tier"];

/// The layer; create it after [`crate::init`] so its instruments come from the real meter.
pub fn layer() -> HttpServerLayer {
    HttpServerLayer::new()
}

#[derive(Clone)]
struct ServerMetrics {
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
}

/// A tower layer for axum routers; see the module docs.
#[derive(Clone)]
pub struct HttpServerLayer {
    metrics: ServerMetrics,
}

impl HttpServerLayer {
    pub fn new() -> Self {
        let meter = global::meter("telemetry.http_server");
        Self {
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
        }
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
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`HttpServerLayer`] wraps around each route.
#[derive(Clone)]
pub struct HttpServerService<S> {
    inner: S,
    metrics: ServerMetrics,
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
        let metrics = self.metrics.clone();

        let method = req.method().as_str().to_owned();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned());
        let span_name = match &route {
            Some(route) => format!("{method} {route}"),
            None => method.clone(),
        };
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .map(|h| h.split(':').next().unwrap_or(h).to_owned());
        let parent = propagation::extract(req.headers());

        let span = tracing::info_span!(
            "http.server.request",
            otel.name = %span_name,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %method,
            http.route = Empty,
            url.path = %req.uri().path(),
            url.scheme = "http",
            server.address = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        if let Some(route) = &route {
            span.record("http.route", route.as_str());
        }
        if let Some(host) = &host {
            span.record("server.address", host.as_str());
        }
        for key in BAGGAGE_ATTRIBUTES {
            if let Some(value) = parent.baggage().get(key) {
                span.set_attribute(key, value.to_string());
            }
        }
        // Disabled when no subscriber exports spans; that is fine, the request still runs.
        let _ = span.set_parent(parent);

        let mut attributes = vec![KeyValue::new("http.request.method", method.clone())];
        if let Some(route) = route {
            attributes.push(KeyValue::new("http.route", route));
        }
        let active_attributes = [
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.scheme", "http"),
        ];
        metrics.active.add(1, &active_attributes);
        let started = Instant::now();

        Box::pin(async move {
            let result = inner.call(req).instrument(span.clone()).await;
            let elapsed = started.elapsed().as_secs_f64();
            metrics.active.add(-1, &active_attributes);
            match &result {
                Ok(response) => {
                    let status = response.status();
                    span.record("http.response.status_code", status.as_u16());
                    attributes.push(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status.as_u16()),
                    ));
                    if status.is_server_error() {
                        span.record("otel.status_code", "ERROR");
                        span.record("error.type", status.as_str());
                        attributes.push(KeyValue::new("error.type", status.as_str().to_owned()));
                    }
                }
                Err(_) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", "_OTHER");
                    attributes.push(KeyValue::new("error.type", "_OTHER"));
                }
            }
            metrics.duration.record(elapsed, &attributes);
            result
        })
    }
}
