//! One invocation of the emulated function: starts an execution environment if none is
//! warm (a cold start), hands it the event through the Runtime API, and waits for its
//! answer within the function's timeout. The Function URL and the queue's event-source
//! poller both invoke through here, so they see the same cold starts, timeouts and crashes.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Shared;
use super::instance::FunctionInstance;
use super::runtime_api::{Invocation, Outcome};

/// An invocation that produced no response: what the emulator answers instead.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) status: StatusCode,
    pub(super) message: String,
    /// More fields for the JSON answer (`errorType`, `errorMessage`, `initError`).
    pub(super) detail: Value,
}

fn fail(status: StatusCode, message: String, detail: Value) -> Result<Bytes, Failure> {
    Err(Failure {
        status,
        message,
        detail,
    })
}

/// Invokes the function with `payload` (the event, as JSON) under `request_id`; the
/// function's response document, or why there is none.
pub(super) async fn invoke(
    shared: &Shared,
    request_id: &str,
    payload: Bytes,
    xray_trace_id: String,
) -> Result<Bytes, Failure> {
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
                return fail(
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
        xray_trace_id,
        payload,
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
        Ok(Ok(Outcome::Response(output))) => Ok(output),
        Ok(Ok(Outcome::Error(error))) => {
            let error: Value = serde_json::from_slice(&error)
                .unwrap_or_else(|_| json!({"errorMessage": String::from_utf8_lossy(&error)}));
            fail(
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
            fail(
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
            fail(
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
            fail(StatusCode::GATEWAY_TIMEOUT, message, json!({}))
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
