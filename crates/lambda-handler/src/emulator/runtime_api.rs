//! The Lambda Runtime API (version 2018-06-01) that the function's runtime polls: `next`
//! long-polls for an invocation, `response` / `error` complete it, `init/error` reports a
//! function that could not start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::Shared;

/// One event handed to the function.
pub(super) struct Invocation {
    pub(super) request_id: String,
    pub(super) deadline_ms: u64,
    /// The `Lambda-Runtime-Trace-Id` header, in X-Ray's format.
    pub(super) xray_trace_id: String,
    pub(super) payload: Bytes,
}

/// How an invocation ended, as reported by the function's runtime.
#[derive(Debug)]
pub(super) enum Outcome {
    Response(Bytes),
    /// The error document (`errorType`, `errorMessage`) the runtime posted.
    Error(Bytes),
}

/// The invocations of one function process. Each process gets its own queue, so an event
/// never reaches a process that died before taking it.
pub(super) struct InvocationQueue {
    pub(super) tx: mpsc::Sender<Invocation>,
    pub(super) rx: Mutex<mpsc::Receiver<Invocation>>,
    /// The error document posted to `init/error`, if the function failed to initialise.
    pub(super) init_error: StdMutex<Option<Bytes>>,
    pub(super) init_failed: Notify,
}

#[derive(Default)]
pub(super) struct RuntimeApiState {
    current: StdMutex<Option<Arc<InvocationQueue>>>,
    pending: StdMutex<HashMap<String, oneshot::Sender<Outcome>>>,
}

impl RuntimeApiState {
    pub(super) fn set_current(&self, queue: Arc<InvocationQueue>) {
        *self.current.lock().expect("runtime state lock poisoned") = Some(queue);
    }

    fn current(&self) -> Option<Arc<InvocationQueue>> {
        self.current
            .lock()
            .expect("runtime state lock poisoned")
            .clone()
    }

    /// Registers an invocation whose outcome the caller awaits on the returned receiver.
    pub(super) fn expect_outcome(&self, request_id: &str) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("runtime state lock poisoned")
            .insert(request_id.to_owned(), tx);
        rx
    }

    /// Forgets an invocation that ended without an outcome (timed out, process died).
    pub(super) fn forget(&self, request_id: &str) {
        self.pending
            .lock()
            .expect("runtime state lock poisoned")
            .remove(request_id);
    }

    fn complete(&self, request_id: &str, outcome: Outcome) -> bool {
        let sender = self
            .pending
            .lock()
            .expect("runtime state lock poisoned")
            .remove(request_id);
        // A known id is accepted even when its caller has gone (the HTTP client hung up):
        // the function did nothing wrong.
        sender.map(|tx| tx.send(outcome)).is_some()
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(invocation_response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared)
}

async fn next_invocation(State(shared): State<Arc<Shared>>) -> Response {
    let Some(queue) = shared.runtime.current() else {
        // Only a process we did not start could ask before the first start; let it wait.
        return std::future::pending().await;
    };
    let invocation = {
        let mut rx = queue.rx.lock().await;
        match rx.recv().await {
            Some(invocation) => invocation,
            // The queue's process was replaced; this caller is a leftover of it.
            None => return std::future::pending().await,
        }
    };
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
    headers.insert(
        "lambda-runtime-aws-request-id",
        header(&invocation.request_id),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from(invocation.deadline_ms),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header(&shared.config.function_arn()),
    );
    headers.insert("lambda-runtime-trace-id", header(&invocation.xray_trace_id));
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, invocation.payload).into_response()
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    accepted_or_unknown(
        shared
            .runtime
            .complete(&request_id, Outcome::Response(body)),
    )
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> Response {
    accepted_or_unknown(shared.runtime.complete(&request_id, Outcome::Error(body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    eprintln!(
        "lambda-emulator: {} failed to initialise: {}",
        shared.config.function_name,
        String::from_utf8_lossy(&body)
    );
    if let Some(queue) = shared.runtime.current() {
        *queue.init_error.lock().expect("init error lock poisoned") = Some(body);
        queue.init_failed.notify_one();
    }
    accepted_or_unknown(true)
}

fn accepted_or_unknown(known: bool) -> Response {
    if known {
        (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "errorType": "InvalidRequestID",
                "errorMessage": "no invocation with this request id is waiting for an outcome"
            })),
        )
            .into_response()
    }
}
