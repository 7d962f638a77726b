//! The function's process: started on demand (a cold start), watched, and stopped when idle,
//! timed out, crashed, or when the emulator shuts down.

use std::io::IsTerminal as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{Mutex, MutexGuard, Notify, mpsc, oneshot, watch};

use super::runtime_api::{Invocation, InvocationQueue};
use super::{EmulatorConfig, Shared};

/// Holds the running function process, if any. Holding the lock means owning the execution
/// environment: an invocation keeps it for its whole duration, so invocations never overlap.
#[derive(Default)]
pub(super) struct InstanceSlot {
    current: Mutex<Option<FunctionInstance>>,
}

impl InstanceSlot {
    pub(super) async fn lock(&self) -> MutexGuard<'_, Option<FunctionInstance>> {
        self.current.lock().await
    }

    /// Stops the running process, if any, logging `why`.
    pub(super) async fn stop(&self, config: &EmulatorConfig, why: &str) {
        if let Some(instance) = self.current.lock().await.take() {
            eprintln!(
                "lambda-emulator: stopping {} (pid {}): {why}",
                config.function_name,
                instance
                    .pid
                    .map_or_else(|| "?".to_owned(), |p| p.to_string())
            );
            instance.stop().await;
        }
    }
}

/// One execution environment: the child process and the channel its Runtime API polls.
pub(super) struct FunctionInstance {
    pub(super) pid: Option<u32>,
    pub(super) queue: Arc<InvocationQueue>,
    exit: watch::Receiver<Option<String>>,
    /// Dropping it (with the instance) kills the process: see `watch_process`.
    kill: Option<oneshot::Sender<()>>,
    pub(super) last_used: Instant,
    /// The configuration revision it was started with (see `Shared::revision`).
    pub(super) revision: u64,
}

impl FunctionInstance {
    /// Starts the function process. Like Lambda, it inherits nothing of the invocation: the
    /// environment is the emulator's own (so OTEL_* reach it) plus the Lambda variables and
    /// the function's current fault configuration as `FAULT_*`.
    pub(super) fn start(shared: &Shared) -> std::io::Result<Self> {
        let config = &shared.config;
        // The revision first, then the settings: a change landing in between then costs one
        // needless restart, never an environment running stale settings as if current.
        let revision = shared.revision.load(Ordering::SeqCst);
        let faults = shared.faults.settings();
        let scenarios: Vec<&str> = faults.scenarios.iter().map(String::as_str).collect();
        // The Runtime API serves the new environment's queue before the process exists: its
        // first `next` can come at once, and asked before the switch it would wait on the
        // old environment's queue (or none) for ever, and the invocation time out.
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        let queue = Arc::new(InvocationQueue {
            tx,
            rx: Mutex::new(rx),
            init_error: std::sync::Mutex::new(None),
            init_failed: Notify::new(),
        });
        shared.runtime.set_current(queue.clone());
        let mut child = Command::new(&config.function)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                shared.runtime_api_addr.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", &config.function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", &config.function_version)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_size_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function_name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!(
                    "emulator/[{}]{}",
                    config.function_version,
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .env("AWS_REGION", &config.region)
            .env("AWS_DEFAULT_REGION", &config.region)
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .env("LAMBDA_TASK_ROOT", task_root(&config.function))
            .env("FAULT_ERROR_RATE", faults.error_rate.to_string())
            .env("FAULT_LATENCY_MS", faults.latency_ms.to_string())
            .env("FAULT_JITTER_MS", faults.jitter_ms.to_string())
            .env("FAULT_SCENARIOS", scenarios.join(","))
            .envs(
                // Lambda logs are plain text; colour codes only help on a terminal.
                (!std::io::stderr().is_terminal()).then_some(("NO_COLOR", "1")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        eprintln!(
            "lambda-emulator: cold start: started {} (pid {}), Runtime API {}",
            config.function.display(),
            pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            shared.runtime_api_addr
        );
        // Lambda sends a function's stdout and stderr to its log stream; here that is our stderr.
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(out, config.function_name.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(err, config.function_name.clone()));
        }

        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let description = match status {
                Ok(status) => status.to_string(),
                Err(e) => format!("unknown status ({e})"),
            };
            let _ = exit_tx.send(Some(description));
        });

        Ok(Self {
            pid,
            queue,
            exit,
            kill: Some(kill),
            last_used: Instant::now(),
            revision,
        })
    }

    /// The process's exit status, if it has exited.
    pub(super) fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Resolves with the exit status once the process has exited.
    pub(super) async fn exited(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(status) => status.clone().unwrap_or_default(),
            Err(_) => "unknown status".to_owned(),
        }
    }

    /// Kills the process and waits until it is gone.
    pub(super) async fn stop(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
    }
}

/// The directory of the function binary, as Lambda's `/var/task`.
fn task_root(function: &std::path::Path) -> String {
    function
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

async fn forward_lines(stream: impl AsyncRead + Unpin, name: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{name}] {line}");
    }
}

/// Stops the process once it has been idle for `idle_timeout`, as Lambda reclaims idle
/// execution environments; the next request is then a cold start.
pub(super) async fn reap_idle(shared: Arc<Shared>) {
    let idle_timeout = shared.config.idle_timeout;
    let tick = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // A busy slot means an invocation is running: the environment is not idle.
        let Ok(mut slot) = shared.slot.current.try_lock() else {
            continue;
        };
        let idle = slot
            .as_ref()
            .is_some_and(|instance| instance.last_used.elapsed() >= idle_timeout);
        if idle && let Some(instance) = slot.take() {
            drop(slot);
            eprintln!(
                "lambda-emulator: {} idle for {}: stopping it (the next request is a cold start)",
                shared.config.function_name,
                humantime::format_duration(idle_timeout)
            );
            instance.stop().await;
        }
    }
}
