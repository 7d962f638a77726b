//! The Function URL: every HTTP request becomes one invocation, except `GET /healthz` (the
//! emulator's own health) and `GET|POST /admin/faults` (the function's configuration; see
//! the [module docs](super)).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Shared;
use super::event::{self, HttpRequest, MAX_PAYLOAD_BYTES};
use super::instance::FunctionInstance;
use super::runtime_api::{Invocation, Outcome};

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

    let config = &shared.config;
    let name = &config.function_name;
    let mut slot = shared.slot.lock().await;
    if let Some(status) = slot.as_ref().and_then(FunctionInstance::exit_status) {
        eprintln!("lambda-emulator: {name} had exited ({status}); starting a new process");
        *slot = None;
    }
    // An environment started before the last configuration change is not reused, as in
    // Lambda after UpdateFunctionConfiguration.
    if slot
        .as_ref()
        .is_some_and(|instance| instance.revision != shared.revision.load(Ordering::SeqCst))
        && let Some(outdated) = slot.take()
    {
        eprintln!(
            "lambda-emulator: stopping {name} (pid {}): its configuration is outdated",
            outdated
                .pid
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        );
        outdated.stop().await;
    }
    if slot.is_none() {
        match FunctionInstance::start(shared) {
            Ok(instance) => *slot = Some(instance),
            Err(e) => {
                return failure(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "could not start {name} from {}: {e}",
                        config.function.display()
                    ),
                    json!({}),
                );
            }
        }
    }
    let instance = slot.as_mut().expect("a process was just started");

    let deadline = SystemTime::now() + config.invocation_timeout;
    let outcome = shared.runtime.expect_outcome(request_id);
    // Forgets the invocation however this handler ends, including when the caller hangs up
    // and the future is dropped mid-invocation.
    let _pending = Pending { shared, request_id };
    let invocation = Invocation {
        request_id: request_id.to_owned(),
        deadline_ms: deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
        xray_trace_id: event::xray_trace_id(traceparent),
        payload: Bytes::from(event.to_string()),
    };
    let timeout = config.invocation_timeout;
    let timed_out = tokio::time::sleep(timeout);
    tokio::pin!(timed_out);
    // The queue holds one event. It is only full when a caller hung up on an invocation the
    // process has not taken yet; then this one waits behind it, within its own timeout.
    let queued = tokio::select! {
        sent = instance.queue.tx.send(invocation) => sent.is_ok(),
        () = &mut timed_out => false,
    };
    let result = tokio::select! {
        outcome = outcome, if queued => Ok(outcome),
        () = &mut timed_out => Err(Ended::TimedOut),
        _ = instance.exited() => Err(Ended::Exited),
        () = instance.queue.init_failed.notified() => Err(Ended::InitFailed),
    };
    instance.last_used = std::time::Instant::now();

    match result {
        Ok(Ok(Outcome::Response(output))) => match event::http_response(&output) {
            Ok(response) => response,
            Err(e) => failure(
                StatusCode::BAD_GATEWAY,
                format!("{name} returned a response a Function URL cannot send: {e}"),
                json!({}),
            ),
        },
        Ok(Ok(Outcome::Error(error))) => {
            let error: Value = serde_json::from_slice(&error)
                .unwrap_or_else(|_| json!({"errorMessage": String::from_utf8_lossy(&error)}));
            failure(
                StatusCode::BAD_GATEWAY,
                format!("{name} failed to handle the request (invocation {request_id})"),
                json!({"errorType": error["errorType"], "errorMessage": error["errorMessage"]}),
            )
        }
        // The sender disappears only if the process was replaced under us; treat as a crash.
        Ok(Err(_)) | Err(Ended::Exited) => {
            let status = instance
                .exit_status()
                .unwrap_or_else(|| "unknown status".to_owned());
            let init_error = instance
                .queue
                .init_error
                .lock()
                .expect("init error lock poisoned")
                .clone();
            *slot = None;
            let message = format!(
                "{name} exited ({status}) during invocation {request_id}; the next request starts a new process"
            );
            eprintln!("lambda-emulator: {message}");
            failure(
                StatusCode::BAD_GATEWAY,
                message,
                init_error_detail(init_error),
            )
        }
        Err(Ended::InitFailed) => {
            let init_error = instance
                .queue
                .init_error
                .lock()
                .expect("init error lock poisoned")
                .clone();
            if let Some(instance) = slot.take() {
                instance.stop().await;
            }
            failure(
                StatusCode::BAD_GATEWAY,
                format!("{name} failed to initialise; the next request starts a new process"),
                init_error_detail(init_error),
            )
        }
        Err(Ended::TimedOut) => {
            if let Some(instance) = slot.take() {
                instance.stop().await;
            }
            let message = format!(
                "{name} timed out after {} (invocation {request_id}); the process was stopped and the next request starts a new one",
                humantime::format_duration(timeout)
            );
            eprintln!("lambda-emulator: {message}");
            failure(StatusCode::GATEWAY_TIMEOUT, message, json!({}))
        }
    }
}

struct Pending<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.runtime.forget(self.request_id);
    }
}

enum Ended {
    TimedOut,
    Exited,
    InitFailed,
}

fn init_error_detail(init_error: Option<Bytes>) -> Value {
    match init_error {
        Some(error) => {
            let error: Value = serde_json::from_slice(&error)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&error)));
            json!({"initError": error})
        }
        None => json!({}),
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
