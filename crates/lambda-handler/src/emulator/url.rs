//! The Function URL: every HTTP request becomes one invocation, except `GET /healthz` (the
//! emulator's own health) and `GET|POST /admin/faults` (the function's configuration; see
//! the [module docs](super)).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::event::{self, HttpRequest, MAX_PAYLOAD_BYTES};
use super::{Shared, invoke};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    // The shared handlers validate and apply the change (400 with the reason otherwise);
    // the layer turns an accepted change into a new configuration revision.
    let configuration = shared
        .faults
        .router()
        .route_layer(middleware::from_fn_with_state(shared.clone(), reconfigure));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(configuration)
        .fallback(invoke)
        .with_state(shared)
}

/// After a `POST /admin/faults` that changed the settings, marks the running execution
/// environment as outdated: the next invocation starts a new one with the new `FAULT_*`.
async fn reconfigure(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let before = shared.faults.settings();
    let is_post = request.method() == Method::POST;
    let response = next.run(request).await;
    let after = shared.faults.settings();
    if is_post && response.status().is_success() && after != before {
        let revision = shared.revision.fetch_add(1, Ordering::SeqCst) + 1;
        eprintln!(
            "lambda-emulator: {} configuration updated (revision {revision}): faults {}; the next invocation starts a new execution environment",
            shared.config.function_name,
            serde_json::to_string(&after).unwrap_or_default()
        );
    }
    response
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !shared.config.function_url {
        return failure(
            StatusCode::NOT_FOUND,
            format!(
                "{} has no Function URL: its queue invokes it",
                shared.config.function_name
            ),
            json!({}),
        );
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = invoke_function(&shared, peer, request, &request_id).await;
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

async fn invoke_function(
    shared: &Shared,
    peer: SocketAddr,
    request: Request,
    request_id: &str,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over Lambda's {MAX_PAYLOAD_BYTES}-byte payload limit"),
            json!({}),
        );
    };
    let event = event::function_url_event(
        &HttpRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body: &body,
            peer,
        },
        request_id,
        &url_id(&shared.config.function_name),
    );
    let traceparent = parts
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok());

    let xray_trace_id = event::xray_trace_id(traceparent);
    match invoke::invoke(
        shared,
        request_id,
        Bytes::from(event.to_string()),
        xray_trace_id,
    )
    .await
    {
        Ok(output) => match event::http_response(&output) {
            Ok(response) => response,
            Err(e) => failure(
                StatusCode::BAD_GATEWAY,
                format!(
                    "{} returned a response a Function URL cannot send: {e}",
                    shared.config.function_name
                ),
                json!({}),
            ),
        },
        Err(invoke::Failure {
            status,
            message,
            detail,
        }) => failure(status, message, detail),
    }
}

/// An error the emulator itself answers with, as JSON: `{"message": ..., <detail>}`.
fn failure(status: StatusCode, message: String, detail: Value) -> Response {
    let mut body = json!({ "message": message });
    if let (Some(body), Value::Object(detail)) = (body.as_object_mut(), detail) {
        body.extend(detail);
    }
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Body::from(body.to_string()),
    )
        .into_response()
}

/// A stable Function URL id for the function, in the 32-character shape AWS uses.
fn url_id(function_name: &str) -> String {
    let mut id: String = function_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    id.push_str("emulator");
    while id.len() < 32 {
        id.push('0');
    }
    id.truncate(32);
    id
}
