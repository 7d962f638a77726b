//! The whole telemetry setup against a real OTLP/gRPC receiver: a real axum server with the
//! server layer, called through the traced client, exported over real sockets.
//!
//! Providers are process-global, so this binary holds one test that sets the environment
//! before any runtime thread exists.

#[path = "../src/testing.rs"]
#[allow(dead_code)]
mod testing;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use telemetry::http_client::TracedClient;
use telemetry::{ServiceInfo, http_server};
use testing::{OtlpReceiver, ReceivedSpan, attr};
use tracing::Instrument as _;

async fn item(axum::extract::Path(id): axum::extract::Path<String>) -> String {
    tracing::info!(item.id = %id, "looking up item");
    format!("item {id}")
}

async fn missing() -> StatusCode {
    StatusCode::NOT_FOUND
}

async fn broken() -> StatusCode {
    tracing::error!("the handler failed");
    StatusCode::INTERNAL_SERVER_ERROR
}

fn span_named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.span.name == name)
        .unwrap_or_else(|| {
            let names: Vec<_> = spans.iter().map(|s| s.span.name.clone()).collect();
            panic!("no span named {name:?}; got {names:?}")
        })
}

#[test]
fn spans_metrics_and_logs_reach_the_collector_with_http_semantics() {
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
        std::env::set_var("OTEL_SERVICE_NAME", "telemetry-under-test");
        std::env::set_var(
            "OTEL_RESOURCE_ATTRIBUTES",
            "k8s.pod.name=order-7d9,k8s.namespace.name=shop",
        );
        std::env::set_var("OTEL_METRIC_EXPORT_INTERVAL", "200");
        std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
        std::env::set_var("OTEL_BLRP_SCHEDULE_DELAY", "100");
    }
    runtime.block_on(async move {
        let guard = telemetry::init(ServiceInfo {
            name: "telemetry-test",
            version: "9.9.9",
        })
        .unwrap();
        assert!(guard.is_enabled());

        let app = Router::new()
            .route("/items/{id}", get(item))
            .route("/missing", get(missing))
            .route("/broken", get(broken))
            .layer(http_server::layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let client = TracedClient::new(Duration::from_secs(5));
        let caller =
            telemetry::propagation::with_baggage([KeyValue::new("customer.tier", "gold")], || {
                tracing::info_span!("test.caller")
            });
        let caller_trace_id = async {
            let ok = client
                .send(client.get(format!("{base}/items/42")))
                .await
                .unwrap();
            assert_eq!(ok.status(), 200);
            let not_found = client
                .send(client.get(format!("{base}/missing")))
                .await
                .unwrap();
            assert_eq!(not_found.status(), 404);
            let broken = client
                .send(client.get(format!("{base}/broken")))
                .await
                .unwrap();
            assert_eq!(broken.status(), 500);
            opentelemetry::trace::TraceContextExt::span(&opentelemetry::Context::current())
                .span_context()
                .trace_id()
                .to_string()
        }
        .instrument(caller.clone())
        .await;
        drop(caller);

        let metrics_arrived = receiver
            .wait_until(Duration::from_secs(10), |r| {
                r.metrics()
                    .iter()
                    .any(|m| m.metric.name == "http.server.request.duration")
            })
            .await;
        assert!(
            metrics_arrived,
            "no http.server.request.duration metric arrived"
        );
        guard.shutdown().await;
        server.abort();

        let spans = receiver.spans();
        // One trace: the caller, three client spans, three server spans.
        assert!(spans.iter().all(|s| s.trace_id() == caller_trace_id));
        assert_eq!(spans.len(), 7, "{spans:#?}");

        let server_ok = span_named(&spans, "GET /items/{id}");
        assert_eq!(server_ok.span.kind, SpanKind::Server as i32);
        assert_eq!(server_ok.attr("http.route").as_deref(), Some("/items/{id}"));
        assert_eq!(
            server_ok.attr("http.request.method").as_deref(),
            Some("GET")
        );
        assert_eq!(server_ok.attr("url.path").as_deref(), Some("/items/42"));
        assert_eq!(
            server_ok.attr("http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(server_ok.attr("customer.tier").as_deref(), Some("gold"));
        let client_ok = spans
            .iter()
            .find(|s| s.span_id() == server_ok.parent_span_id())
            .expect("the server span's parent was exported");
        assert_eq!(client_ok.span.kind, SpanKind::Client as i32);
        assert_eq!(client_ok.span.name, "GET");
        assert_eq!(client_ok.attr("url.full"), Some(format!("{base}/items/42")));
        assert_eq!(
            client_ok.attr("server.address").as_deref(),
            Some("127.0.0.1")
        );

        let status_of = |s: &ReceivedSpan| s.span.status.clone().unwrap_or_default().code;
        let server_404 = span_named(&spans, "GET /missing");
        assert_ne!(
            status_of(server_404),
            OtlpStatus::Error as i32,
            "4xx is not a server error"
        );
        assert_eq!(server_404.attr("error.type"), None);
        let server_500 = span_named(&spans, "GET /broken");
        assert_eq!(status_of(server_500), OtlpStatus::Error as i32);
        assert_eq!(server_500.attr("error.type").as_deref(), Some("500"));

        let resource = &server_ok.resource.attributes;
        assert_eq!(server_ok.service_name(), "telemetry-under-test");
        assert_eq!(attr(resource, "service.version").as_deref(), Some("9.9.9"));
        assert_eq!(attr(resource, "k8s.pod.name").as_deref(), Some("order-7d9"));
        assert_eq!(
            attr(resource, "deployment.environment.name").as_deref(),
            Some("lab")
        );
        assert!(attr(resource, "service.instance.id").is_some_and(|id| id.len() == 36));

        let logs = receiver.logs();
        let lookup = logs
            .iter()
            .find(|l| l.body() == "looking up item")
            .expect("the handler's log arrived");
        assert_eq!(lookup.trace_id(), caller_trace_id);
        assert_eq!(lookup.span_id(), server_ok.span_id());

        let metrics = receiver.metrics();
        let duration = metrics
            .iter()
            .rev()
            .find(|m| m.metric.name == "http.server.request.duration")
            .unwrap();
        assert_eq!(duration.metric.unit, "s");
        let Some(Data::Histogram(histogram)) = &duration.metric.data else {
            panic!("http.server.request.duration is not a histogram");
        };
        let routes: Vec<_> = histogram
            .data_points
            .iter()
            .map(|p| attr(&p.attributes, "http.route"))
            .collect();
        assert!(
            routes.contains(&Some("/items/{id}".to_owned())),
            "{routes:?}"
        );
        for point in &histogram.data_points {
            assert_eq!(
                point.explicit_bounds,
                telemetry::DURATION_BUCKETS_SECONDS.to_vec()
            );
            let keys: Vec<_> = point.attributes.iter().map(|kv| kv.key.as_str()).collect();
            assert!(
                keys.iter().all(|k| [
                    "http.request.method",
                    "url.scheme",
                    "network.protocol.version",
                    "http.route",
                    "http.response.status_code",
                    "error.type"
                ]
                .contains(k)),
                "unexpected metric attribute in {keys:?}"
            );
            assert_eq!(
                attr(&point.attributes, "url.scheme").as_deref(),
                Some("http")
            );
        }
        assert!(
            metrics
                .iter()
                .any(|m| m.metric.name == "http.client.request.duration" && m.metric.unit == "s")
        );
    });
}
