//! The HTTP semantic conventions the server layer and the traced client promise, checked on
//! what a real collector receives: unknown methods, the attributes of a server span, untraced
//! health checks, a request the client abandons, retries, baggage merged across a hop, and
//! log lines that travel once.
//!
//! Providers are process-global, so this binary holds one test.

#[path = "../src/testing.rs"]
#[allow(dead_code)]
mod testing;

use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use opentelemetry_semantic_conventions::attribute as semconv;
use telemetry::http_client::TracedClient;
use telemetry::{ServiceInfo, http_server};
use testing::{OtlpReceiver, ReceivedSpan, attr};
use tracing::Instrument as _;

/// Answers with the `baggage` header it received.
async fn echo_baggage(headers: HeaderMap) -> String {
    headers
        .get("baggage")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Adds `customer.tier` to the caller's baggage and calls `/echo` with it.
async fn hop(axum::extract::State(base): axum::extract::State<String>) -> String {
    let client = TracedClient::new(Duration::from_secs(5));
    let span =
        telemetry::propagation::with_baggage([KeyValue::new("customer.tier", "gold")], || {
            tracing::info_span!("hop.work")
        });
    async {
        let response = client
            .send(client.get(format!("{base}/echo")))
            .await
            .unwrap();
        response.text().await.unwrap()
    }
    .instrument(span)
    .await
}

async fn chatty() -> &'static str {
    tracing::info!(item.id = 7, "looking up item");
    let cache = tracing::info_span!("cache.write");
    cache.in_scope(|| tracing::error!(error = "disk full", "cache write failed"));
    "ok"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "too late"
}

fn spans_named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

fn one_span<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found = spans_named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "expected one span named {name:?}; got {:?}",
        spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    found[0]
}

/// The latest cumulative value of `http.server.active_requests` for `method`.
fn active_requests(receiver: &OtlpReceiver, method: &str) -> Option<i64> {
    receiver
        .metrics()
        .iter()
        .rev()
        .filter(|m| m.metric.name == "http.server.active_requests")
        .find_map(|m| match &m.metric.data {
            Some(Data::Sum(sum)) => sum
                .data_points
                .iter()
                .find(|p| attr(&p.attributes, "http.request.method").as_deref() == Some(method))
                .map(|p| match p.value {
                    Some(
                        opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(v),
                    ) => v,
                    _ => panic!("active_requests is not an integer"),
                }),
            _ => None,
        })
}

#[test]
fn server_and_client_follow_the_http_conventions() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(OtlpReceiver::start()).unwrap();
    // SAFETY: the only other threads are the runtime's idle workers and the receiver's
    // tasks, none of which read the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint());
        std::env::set_var("OTEL_SERVICE_NAME", "http-semantics");
        std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "200");
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        std::env::set_var("OTEL_BLRP_SCHEDULE_DELAY", "100");
    }
    runtime.block_on(async move {
        let guard = telemetry::init(ServiceInfo {
            name: "http-semantics",
            version: "1.0.0",
        })
        .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .route("/healthz", get(|| async { "ok" }))
            .route("/echo", get(echo_baggage))
            .route("/hop", get(hop))
            .route("/chatty", get(chatty))
            .route("/slow", get(slow))
            .with_state(base.clone())
            .layer(http_server::layer());
        let server = tokio::spawn(http_server::serve(
            listener,
            app,
            std::future::pending::<()>(),
        ));
        let client = TracedClient::new(Duration::from_secs(5));

        // A method nobody registered: `_OTHER` everywhere, the real one kept on the spans.
        let propfind = reqwest::Method::from_bytes(b"PROPFIND").unwrap();
        let response = client
            .send(
                client
                    .inner()
                    .request(propfind, format!("{base}/items/1"))
                    .header("user-agent", "lab-test/1.0"),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 405);

        let health = client
            .send(client.get(format!("{base}/healthz")))
            .await
            .unwrap();
        assert_eq!(health.status(), 200);

        // The caller's baggage, plus what the hop adds, reaches the next service.
        let mut with_session = reqwest::header::HeaderMap::new();
        with_session.insert("baggage", "session.id=s-1".parse().unwrap());
        let echoed = client
            .inner()
            .get(format!("{base}/hop"))
            .headers(with_session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut entries: Vec<_> = echoed.split(',').map(str::trim).collect();
        entries.sort_unstable();
        assert_eq!(
            entries,
            ["customer.tier=gold", "session.id=s-1"],
            "{echoed}"
        );

        let chatty = client
            .send(client.get(format!("{base}/chatty")))
            .await
            .unwrap();
        assert_eq!(chatty.status(), 200);

        let retried = client
            .resend(client.get(format!("{base}/items/2")), 2)
            .await
            .unwrap();
        assert_eq!(retried.status(), 200);

        // The client gives up after 200 ms; the server's future is dropped mid-request.
        let impatient = TracedClient::new(Duration::from_millis(200));
        let abandoned = impatient.send(impatient.get(format!("{base}/slow"))).await;
        assert!(abandoned.is_err(), "the slow request should time out");

        let settled = receiver
            .wait_until(Duration::from_secs(10), |r| {
                r.spans().iter().any(|s| s.span.name == "GET /slow")
                    && active_requests(r, "GET") == Some(0)
            })
            .await;
        let spans = receiver.spans();
        assert!(
            settled,
            "the abandoned request never ended: GET active_requests {:?}, spans {:?}",
            active_requests(&receiver, "GET"),
            spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
        );
        assert_eq!(active_requests(&receiver, "_OTHER"), Some(0));

        let unknown = one_span(&spans, "HTTP /items/{id}");
        assert_eq!(
            unknown.attr("http.request.method").as_deref(),
            Some("_OTHER")
        );
        assert_eq!(
            unknown.attr("http.request.method_original").as_deref(),
            Some("PROPFIND")
        );
        assert_eq!(unknown.attr("server.address").as_deref(), Some("127.0.0.1"));
        assert_eq!(unknown.attr("server.port"), Some(port.to_string()));
        assert_eq!(unknown.attr("client.address").as_deref(), Some("127.0.0.1"));
        assert_eq!(unknown.attr("url.scheme").as_deref(), Some("http"));
        assert_eq!(
            unknown.attr("network.protocol.version").as_deref(),
            Some("1.1")
        );
        assert_eq!(
            unknown.attr("user_agent.original").as_deref(),
            Some("lab-test/1.0")
        );
        let client_unknown = one_span(&spans, "HTTP");
        assert_eq!(
            client_unknown
                .attr("http.request.method_original")
                .as_deref(),
            Some("PROPFIND")
        );

        assert!(
            spans
                .iter()
                .all(|s| s.attr("url.path").as_deref() != Some("/healthz")),
            "a health check was traced"
        );

        let chatty_server = one_span(&spans, "GET /chatty");
        assert!(
            chatty_server.span.events.is_empty(),
            "log lines became span events: {:?}",
            chatty_server.span.events
        );
        let cache = one_span(&spans, "cache.write");
        let status = cache.span.status.clone().unwrap_or_default();
        assert_eq!(status.code, OtlpStatus::Error as i32);
        assert_eq!(status.message, "cache write failed: disk full");
        let logs = receiver.logs();
        let lookups: Vec<_> = logs
            .iter()
            .filter(|l| l.body() == "looking up item")
            .collect();
        assert_eq!(
            lookups.len(),
            1,
            "the log line arrives once, as a log record"
        );
        assert_eq!(lookups[0].span_id(), chatty_server.span_id());

        let items: Vec<_> = spans_named(&spans, "GET")
            .into_iter()
            .filter(|s| s.attr("url.full").is_some_and(|u| u.ends_with("/items/2")))
            .collect();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].attr("http.request.resend_count").as_deref(),
            Some("2")
        );

        // Every HTTP attribute written as a `tracing` field name is spelled as the
        // conventions crate spells it.
        let conventions = [
            semconv::HTTP_REQUEST_METHOD,
            semconv::HTTP_REQUEST_METHOD_ORIGINAL,
            semconv::HTTP_REQUEST_RESEND_COUNT,
            semconv::HTTP_RESPONSE_STATUS_CODE,
            semconv::HTTP_ROUTE,
            semconv::URL_FULL,
            semconv::URL_PATH,
            semconv::URL_QUERY,
            semconv::URL_SCHEME,
            semconv::SERVER_ADDRESS,
            semconv::SERVER_PORT,
            semconv::CLIENT_ADDRESS,
            semconv::NETWORK_PEER_ADDRESS,
            semconv::NETWORK_PEER_PORT,
            semconv::NETWORK_PROTOCOL_VERSION,
            semconv::USER_AGENT_ORIGINAL,
            semconv::ERROR_TYPE,
        ];
        // What tracing-opentelemetry adds to every span by itself, once thread, target and
        // busy/idle time are turned off.
        let layer_extras = ["code.file.path", "code.module.name", "code.line.number"];
        for span in spans
            .iter()
            .filter(|s| s.span.kind == 2 || s.span.kind == 3)
        {
            for kv in &span.span.attributes {
                assert!(
                    conventions.contains(&kv.key.as_str())
                        || layer_extras.contains(&kv.key.as_str())
                        || telemetry::propagation::SPAN_BAGGAGE_KEYS.contains(&kv.key.as_str()),
                    "{:?} on {:?} is not an HTTP semantic-conventions attribute",
                    kv.key,
                    span.span.name
                );
            }
        }

        // The conventions' integer attributes are integers: tracing-opentelemetry turns an
        // unsigned field (a `u16` port or status code) into a string.
        for span in spans
            .iter()
            .filter(|s| s.span.kind == 2 || s.span.kind == 3)
        {
            for key in [
                semconv::HTTP_RESPONSE_STATUS_CODE,
                semconv::SERVER_PORT,
                semconv::NETWORK_PEER_PORT,
                semconv::HTTP_REQUEST_RESEND_COUNT,
            ] {
                if span.attr(key).is_some() {
                    assert!(
                        span.int_attr(key).is_some(),
                        "{key} on {:?} is {:?}, not an integer",
                        span.span.name,
                        span.attr(key)
                    );
                }
            }
        }

        let slow = one_span(&spans, "GET /slow");
        assert_eq!(slow.attr("error.type").as_deref(), Some("cancelled"));
        assert_eq!(slow.attr("http.response.status_code"), None);

        // Metric series: `_OTHER`, never the invented method; url.scheme on every point;
        // no health-check series; the abandoned request counted with its error.type.
        let metrics = receiver.metrics();
        let duration = metrics
            .iter()
            .rev()
            .find(|m| m.metric.name == "http.server.request.duration")
            .unwrap();
        let Some(Data::Histogram(histogram)) = &duration.metric.data else {
            panic!("http.server.request.duration is not a histogram");
        };
        let series: Vec<_> = histogram
            .data_points
            .iter()
            .map(|p| {
                assert_eq!(attr(&p.attributes, "url.scheme").as_deref(), Some("http"));
                (
                    attr(&p.attributes, "http.request.method").unwrap_or_default(),
                    attr(&p.attributes, "http.route").unwrap_or_default(),
                    attr(&p.attributes, "error.type").unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            series.iter().all(|(method, _, _)| method != "PROPFIND"),
            "{series:?}"
        );
        assert!(
            series.iter().any(|(method, _, _)| method == "_OTHER"),
            "{series:?}"
        );
        assert!(
            series.iter().all(|(_, route, _)| route != "/healthz"),
            "{series:?}"
        );
        assert!(
            series.contains(&("GET".to_owned(), "/slow".to_owned(), "cancelled".to_owned())),
            "{series:?}"
        );

        guard.shutdown().await;
        server.abort();
    });
}
