//! The traced HTTP client every service uses for its outgoing calls: a CLIENT span named
//! after the method, `traceparent`/`tracestate`/`baggage` injected from that span's
//! context, and the `http.client.request.duration` histogram.
//!
//! ```no_run
//! # async fn demo() -> Result<(), reqwest::Error> {
//! use std::time::Duration;
//! let client = telemetry::http_client::TracedClient::new(Duration::from_secs(5));
//! let response = client
//!     .send(client.post("http://127.0.0.1:8082/inventory/reserve").json(&serde_json::json!({})))
//!     .await?;
//! # let _ = response; Ok(()) }
//! ```

use std::time::{Duration, Instant};

use opentelemetry::metrics::Histogram;
use opentelemetry::{KeyValue, global};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use opentelemetry_semantic_conventions::attribute as semconv;

use crate::http_server::{known_method, protocol_version};
use crate::{DURATION_BUCKETS_SECONDS, propagation};

/// A `reqwest::Client` that traces and propagates every request sent through
/// [`TracedClient::send`]. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct TracedClient {
    client: reqwest::Client,
    duration: Histogram<f64>,
}

impl TracedClient {
    /// A client whose requests time out after `timeout` (connect + response). Create it
    /// after [`crate::init`] so its histogram comes from the real meter.
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            // Only TLS backend initialisation can fail, and this client has no TLS.
            .expect("building a plain-HTTP reqwest client cannot fail");
        let duration = global::meter("telemetry.http_client")
            .f64_histogram("http.client.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP client requests.")
            .with_boundaries(DURATION_BUCKETS_SECONDS.to_vec())
            .build();
        Self { client, duration }
    }

    /// The underlying client, to build requests with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Starts a GET request; send it with [`TracedClient::send`].
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    /// Starts a POST request; send it with [`TracedClient::send`].
    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Sends the request inside a CLIENT span, child of the current span. Any response,
    /// 4xx and 5xx included, is `Ok`: check the status. A response >= 400 or a transport
    /// error sets `error.type` and marks the client span as an error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.resend(request, 0).await
    }

    /// [`TracedClient::send`] for the `resend_count`-th retry of a request that was sent
    /// before (`http.request.resend_count` on the span, as the conventions ask, so a
    /// trace shows which try is which). `0` is the first try.
    pub async fn resend(
        &self,
        request: reqwest::RequestBuilder,
        resend_count: u32,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = request.build()?;
        let method = known_method(request.method());
        let method_label = method.unwrap_or("_OTHER");
        let url = request.url();
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or_default();
        let mut full = url.clone();
        // Credentials never go into telemetry.
        let _ = full.set_username("");
        let _ = full.set_password(None);

        let span = tracing::info_span!(
            "http.client.request",
            otel.name = method.unwrap_or("HTTP"),
            otel.kind = "client",
            otel.status_code = Empty,
            { semconv::HTTP_REQUEST_METHOD } = method_label,
            { semconv::HTTP_REQUEST_METHOD_ORIGINAL } = Empty,
            { semconv::HTTP_REQUEST_RESEND_COUNT } = Empty,
            { semconv::URL_FULL } = %full,
            { semconv::SERVER_ADDRESS } = %host,
            { semconv::SERVER_PORT } = i64::from(port),
            { semconv::NETWORK_PROTOCOL_VERSION } = Empty,
            { semconv::HTTP_RESPONSE_STATUS_CODE } = Empty,
            { semconv::ERROR_TYPE } = Empty,
        );
        if method.is_none() {
            span.record(
                semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                request.method().as_str(),
            );
        }
        if resend_count > 0 {
            span.record(semconv::HTTP_REQUEST_RESEND_COUNT, i64::from(resend_count));
        }
        propagation::inject(&span.context(), request.headers_mut());

        let mut attributes = vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, method_label),
            KeyValue::new(semconv::SERVER_ADDRESS, host),
            KeyValue::new(semconv::SERVER_PORT, i64::from(port)),
        ];
        let started = Instant::now();
        let result = self.client.execute(request).instrument(span.clone()).await;
        match &result {
            Ok(response) => {
                let status = response.status();
                let version = protocol_version(response.version());
                span.record(semconv::NETWORK_PROTOCOL_VERSION, version);
                span.record(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                );
                attributes.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
                attributes.push(KeyValue::new(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status.as_u16()),
                ));
                if status.is_client_error() || status.is_server_error() {
                    span.record("otel.status_code", "ERROR");
                    span.record(semconv::ERROR_TYPE, status.as_str());
                    attributes.push(KeyValue::new(
                        semconv::ERROR_TYPE,
                        status.as_str().to_owned(),
                    ));
                }
            }
            Err(err) => {
                let error_type = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect_error"
                } else {
                    "_OTHER"
                };
                span.record("otel.status_code", "ERROR");
                span.record(semconv::ERROR_TYPE, error_type);
                span.in_scope(|| tracing::warn!(error = %err, "HTTP request failed"));
                attributes.push(KeyValue::new(semconv::ERROR_TYPE, error_type));
            }
        }
        self.duration
            .record(started.elapsed().as_secs_f64(), &attributes);
        result
    }
}
