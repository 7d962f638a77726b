//! A local stand-in for AWS Lambda: it runs the unmodified `bootstrap` binary as a child
//! process, serves it the Lambda Runtime API, and exposes it behind a Function URL.
//!
//! One emulator is one execution environment of one function, as in Lambda with a reserved
//! concurrency of one: invocations are handled one at a time, the process is started on the
//! first request (a cold start), kept warm between requests, and stopped after
//! `idle_timeout` without traffic, after a timed-out invocation, or when it crashes. The next
//! request then starts a new process, so learners see `faas.coldstart=true` again.
//!
//! `GET|POST /admin/faults` on the Function URL is the function's configuration, not an
//! invocation: the emulator plays the Lambda control plane there. The function reads its
//! faults from the `FAULT_*` environment when an execution environment starts (as a Lambda
//! function reads any configuration), so a `POST` does what
//! `aws lambda update-function-configuration --environment Variables={FAULT_...}` does in
//! AWS: the settings (the shared [`telemetry::faults`] types, validated the same way as on
//! every service) become the environment of new execution environments, and an environment
//! started with the old ones is not used again: the next invocation is a cold start with the
//! new settings. The alternatives were less faithful: forwarding the request to the function
//! (a function cannot change its own configuration, and with several environments only one
//! would hear it) or a side channel into the running process (Lambda has none). `GET` shows
//! the current configuration, like `get-function-configuration`. The emulator's own
//! `FAULT_*` variables are the configuration it starts with.

mod event;
mod event_source;
mod instance;
mod invoke;
mod runtime_api;
mod url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use telemetry::faults::{FaultSettings, FaultUpdate, Faults};
use tokio::net::TcpListener;

pub use event_source::EventSourceConfig;
use instance::InstanceSlot;
use runtime_api::RuntimeApiState;

/// What the emulated function is and how Lambda would run it.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The function's executable (a `bootstrap` built for the `provided.al2023` runtime).
    pub function: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME` of the child; also names it in the emulator's logs.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` of the child: Lambda's unpublished version is `$LATEST`.
    pub function_version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` of the child, in MB (Lambda's default is 128).
    pub memory_size_mb: u32,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` of the child and the region in the function ARN.
    pub region: String,
    /// How long one invocation may run before it is answered with 504 and the process stopped.
    pub invocation_timeout: Duration,
    /// How long a warm process is kept without invocations before it is stopped.
    pub idle_timeout: Duration,
    /// The fault settings the function starts with (as `FAULT_*` in its environment), until
    /// `POST /admin/faults` changes them.
    pub faults: FaultSettings,
    /// Whether HTTP requests to the emulator's address invoke the function. A function
    /// triggered only by its queue has no Function URL: its address then serves only
    /// `/healthz` and `/admin/faults`.
    pub function_url: bool,
    /// The queue that triggers the function, if one does.
    pub event_source: Option<EventSourceConfig>,
}

impl EmulatorConfig {
    /// The configuration Lambda would give `function` by default.
    pub fn new(function: impl Into<PathBuf>) -> Self {
        Self {
            function: function.into(),
            function_name: "fraud-check".to_owned(),
            function_version: "$LATEST".to_owned(),
            memory_size_mb: 128,
            region: "us-east-1".to_owned(),
            invocation_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            faults: FaultSettings::default(),
            function_url: true,
            event_source: None,
        }
    }

    fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            self.region, self.function_name
        )
    }
}

/// State shared by the Function URL server, the Runtime API server and the idle reaper.
struct Shared {
    config: EmulatorConfig,
    runtime_api_addr: SocketAddr,
    slot: InstanceSlot,
    runtime: RuntimeApiState,
    /// The function's fault configuration: what new execution environments get as `FAULT_*`.
    faults: Faults,
    /// Bumped each time `faults` changes; an execution environment started at an older
    /// revision is not given another invocation.
    revision: AtomicU64,
}

/// An emulator whose two listeners are bound; [`Emulator::serve`] runs it.
pub struct Emulator {
    shared: Arc<Shared>,
    url_listener: TcpListener,
    runtime_listener: TcpListener,
}

impl Emulator {
    /// Binds the Function URL on `url_addr` and the Runtime API on `runtime_api_addr`
    /// (either may use port 0).
    pub async fn bind(
        config: EmulatorConfig,
        url_addr: SocketAddr,
        runtime_api_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let url_listener = TcpListener::bind(url_addr)
            .await
            .with_context(|| format!("cannot listen for the function URL on {url_addr}"))?;
        let runtime_listener = TcpListener::bind(runtime_api_addr)
            .await
            .with_context(|| format!("cannot listen for the Runtime API on {runtime_api_addr}"))?;
        let faults = Faults::new();
        faults
            .update(FaultUpdate {
                error_rate: Some(config.faults.error_rate),
                latency_ms: Some(config.faults.latency_ms),
                jitter_ms: Some(config.faults.jitter_ms),
                scenarios: Some(config.faults.scenarios.iter().cloned().collect()),
                hidden_scenarios: None,
            })
            .context("invalid initial fault settings")?;
        let shared = Arc::new(Shared {
            runtime_api_addr: runtime_listener.local_addr()?,
            config,
            slot: InstanceSlot::default(),
            runtime: RuntimeApiState::default(),
            faults,
            revision: AtomicU64::new(0),
        });
        Ok(Self {
            shared,
            url_listener,
            runtime_listener,
        })
    }

    /// Where the Function URL listens.
    pub fn url_addr(&self) -> SocketAddr {
        self.url_listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Where the Runtime API listens (the child's `AWS_LAMBDA_RUNTIME_API`).
    pub fn runtime_api_addr(&self) -> SocketAddr {
        self.shared.runtime_api_addr
    }

    /// Serves until `shutdown` completes, then stops the function process.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            shared,
            url_listener,
            runtime_listener,
        } = self;
        let runtime_app = runtime_api::router(shared.clone());
        let url_app =
            url::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();

        let runtime_server =
            tokio::spawn(async move { axum::serve(runtime_listener, runtime_app).await });
        let reaper = tokio::spawn(instance::reap_idle(shared.clone()));
        let poller = match &shared.config.event_source {
            Some(source) => {
                let queues = queue::Queues::open(&source.queue_file).with_context(|| {
                    format!("cannot open the queue file {}", source.queue_file.display())
                })?;
                Some(tokio::spawn(event_source::poll(
                    shared.clone(),
                    source.clone(),
                    Arc::new(queues),
                )))
            }
            None => None,
        };

        let result = axum::serve(url_listener, url_app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the function URL server failed");

        if let Some(poller) = poller {
            poller.abort();
        }
        reaper.abort();
        runtime_server.abort();
        shared
            .slot
            .stop(&shared.config, "the emulator is shutting down")
            .await;
        result
    }
}
