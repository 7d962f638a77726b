//! OTLP/HTTP: `POST /v1/{traces,metrics,logs}` with protobuf or JSON bodies, answered in
//! the request's encoding with the status codes of the OTLP specification.

use super::{HttpConfig, Sink, Transport};
use crate::extensions::bearertokenauth::BearerToken;
use crate::otlp_codec::{self, CodecError, Encoding};
use crate::pdata::{Batch, Signal};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// google.rpc.Status, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone)]
struct AppState {
    sink: Sink,
    limit: usize,
}

fn error_response(status: StatusCode, encoding: Encoding, message: String) -> Response {
    // gRPC codes: 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE.
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => 8,
        _ => 3,
    };
    let st = RpcStatus { code, message };
    let body = match encoding {
        Encoding::Protobuf => st.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&st).expect("status serialises"),
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn handle(signal: Signal, State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(ct) else {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            format!(
                "unsupported Content-Type \"{ct}\"; use application/x-protobuf or application/json"
            ),
        );
    };
    let body = match read_limited(req.into_body(), state.limit).await {
        Ok(b) => b,
        Err(()) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                encoding,
                format!(
                    "request body is larger than the limit of {} bytes",
                    state.limit
                ),
            );
        }
    };
    let batch = match decode_body(signal, encoding, &headers, &body, state.limit) {
        Ok(b) => b,
        Err(e @ CodecError::TooLarge { .. }) => {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, encoding, e.to_string());
        }
        Err(e @ CodecError::UnsupportedEncoding(_)) => {
            return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, encoding, e.to_string());
        }
        Err(e) => return error_response(StatusCode::BAD_REQUEST, encoding, e.to_string()),
    };
    match state.sink.push(Transport::Http, batch).await {
        Ok(()) => success(signal, encoding),
        Err(e) if e.retryable => {
            let secs = e.retry_after.map(|d| d.as_secs().max(1)).unwrap_or(1);
            let mut r = error_response(StatusCode::SERVICE_UNAVAILABLE, encoding, e.message);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, encoding, e.message),
    }
}

/// Reads at most `limit` bytes. When the body is larger, the rest is read and thrown away
/// (up to a bound) so the client is still reading when the 413 arrives, instead of seeing
/// its connection reset mid-upload.
async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, ()> {
    use http_body_util::BodyExt;
    const DRAIN_AT_MOST: usize = 256 << 20;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(()) };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit + DRAIN_AT_MOST {
                return Err(());
            }
        }
    }
    if seen > limit {
        Err(())
    } else {
        Ok(buf.freeze())
    }
}

fn decode_body(
    signal: Signal,
    encoding: Encoding,
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<Batch, CodecError> {
    let ce = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let raw = otlp_codec::decompress(body, ce, limit)?;
    otlp_codec::decode(signal, encoding, &raw)
}

/// An empty Export*ServiceResponse: no partial success to report.
fn success(_signal: Signal, encoding: Encoding) -> Response {
    let body: Vec<u8> = match encoding {
        Encoding::Protobuf => Vec::new(),
        Encoding::Json => b"{}".to_vec(),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    let mut r = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        Encoding::Json,
        "only POST is allowed on OTLP paths".into(),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        Encoding::Json,
        "unknown path; OTLP/HTTP paths are /v1/traces, /v1/metrics and /v1/logs".into(),
    )
}

pub(super) async fn serve(
    host: &crate::component::Host,
    id: &str,
    cfg: &HttpConfig,
    token: Option<Arc<BearerToken>>,
    sink: Sink,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = host.listeners.bind_tokio(&cfg.endpoint).with_context(|| {
        format!(
            "receivers::{id}::protocols::http: cannot listen on {}",
            cfg.endpoint
        )
    })?;
    let addr = listener.local_addr()?;
    let state = AppState {
        sink: sink.clone(),
        limit: cfg.max_request_body_size,
    };
    let mut app: Router<AppState> = Router::new();
    for (signal, path) in [
        (Signal::Traces, &cfg.traces_url_path),
        (Signal::Metrics, &cfg.metrics_url_path),
        (Signal::Logs, &cfg.logs_url_path),
    ] {
        if sink.accepts(signal) {
            app = app.route(
                path,
                post(move |s: State<AppState>, r: Request| handle(signal, s, r))
                    .fallback(method_not_allowed),
            );
        }
    }
    let mut app = app
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    if let Some(token) = token {
        app = app.layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| {
                let token = token.clone();
                async move {
                    if token.accepts(
                        req.headers()
                            .get(header::AUTHORIZATION)
                            .map(|v| v.as_bytes()),
                    ) {
                        next.run(req).await
                    } else {
                        let mut r = error_response(
                            StatusCode::UNAUTHORIZED,
                            Encoding::Json,
                            "missing or wrong bearer token".into(),
                        );
                        r.headers_mut()
                            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                        r
                    }
                }
            },
        ));
    }
    if let Some(cors) = &cfg.cors
        && !cors.allowed_origins.is_empty()
    {
        use tower_http::cors::{AllowOrigin, CorsLayer};
        let origins = if cors.allowed_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                cors.allowed_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        let mut headers = vec![header::CONTENT_TYPE, header::CONTENT_ENCODING];
        headers.extend(cors.allowed_headers.iter().filter_map(|h| h.parse().ok()));
        let mut layer = CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST])
            .allow_headers(headers);
        if cors.max_age > 0 {
            layer = layer.max_age(std::time::Duration::from_secs(cors.max_age));
        }
        app = app.layer(layer);
    }
    tracing::info!(receiver = %id, address = %addr, tls = cfg.tls.is_some(), auth = cfg.auth.is_some(), "OTLP/HTTP receiver listening");
    let id = id.to_string();
    if let Some(tls) = &cfg.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(
            tls.rustls()
                .with_context(|| format!("receivers::{id}::protocols::http::tls"))?,
        );
        return Ok(tokio::spawn(serve_tls(listener, acceptor, app, stop, id)));
    }
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(receiver = %id, error = %e, "OTLP/HTTP server failed");
        }
    }))
}

/// axum behind TLS: one task per connection; a failed handshake (wrong client certificate,
/// plain HTTP on the TLS port) affects that connection only.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    mut stop: watch::Receiver<bool>,
    id: String,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let app = app.clone();
                let id = id.clone();
                connections.spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(tls) => {
                            let svc = hyper_util::service::TowerToHyperService::new(app);
                            if let Err(e) = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), svc).await {
                                tracing::debug!(receiver = %id, %peer, error = %e, "connection ended with an error");
                            }
                        }
                        Err(e) => tracing::warn!(receiver = %id, %peer, error = %e, "TLS handshake failed"),
                    }
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // In-flight requests get a moment to finish.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
