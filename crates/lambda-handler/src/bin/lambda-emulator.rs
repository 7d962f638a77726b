//! `lambda-emulator`: runs an unmodified Lambda `bootstrap` locally behind a Function URL.
//! See [`lambda_handler::emulator`] for what it emulates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use lambda_handler::emulator::{Emulator, EmulatorConfig, EventSourceConfig};
use queue::Redrive;
use telemetry::faults::Faults;

/// Local AWS Lambda Runtime API and Function URL emulator.
///
/// FAULT_ERROR_RATE, FAULT_LATENCY_MS, FAULT_JITTER_MS and FAULT_SCENARIOS are the function's
/// initial fault configuration; `POST /admin/faults` on the Function URL changes it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The function's executable (a Lambda `bootstrap`).
    #[arg(long, env = "LAMBDA_FUNCTION")]
    function: PathBuf,
    /// Address of the Function URL.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Address of the Runtime API the function polls (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    runtime_api: SocketAddr,
    /// Stop the function process after this long without invocations.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Limit of one invocation; past it the request gets 504 and the process is stopped.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The function's name (AWS_LAMBDA_FUNCTION_NAME).
    #[arg(long, default_value = "fraud-check")]
    function_name: String,
    /// The function's version (AWS_LAMBDA_FUNCTION_VERSION).
    #[arg(long, default_value = "$LATEST")]
    function_version: String,
    /// The function's memory size in MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, default_value_t = 128)]
    memory_size: u32,
    /// Serve no Function URL: the address answers only /healthz and /admin/faults, and the
    /// function is invoked by its queue.
    #[arg(long)]
    no_function_url: bool,
    /// A queue file (the lab's local SQS) whose queue triggers the function, as an SQS event
    /// source mapping does.
    #[arg(long)]
    queue_file: Option<PathBuf>,
    /// The queue in --queue-file that triggers the function.
    #[arg(long, default_value = "orders")]
    queue: String,
    /// Most messages per invocation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10000))]
    batch_size: u16,
    /// How long to gather messages before invoking with a batch that is not full.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    batching_window: Duration,
    /// How long a message handed to the function stays hidden from other receives.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    visibility_timeout: Duration,
    /// Receives after which a message goes to --dead-letter-queue (0: never).
    #[arg(long, default_value_t = 3)]
    max_receive_count: u32,
    /// Where messages received --max-receive-count times go.
    #[arg(long, default_value = "orders-dlq")]
    dead_letter_queue: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.function.is_file() {
        anyhow::bail!(
            "--function {} is not a file (build it with `cargo build -p lambda-handler --bin bootstrap`)",
            cli.function.display()
        );
    }
    // Checked here so a typo fails the start, not every cold start of the function.
    let faults = Faults::from_env()
        .context("invalid FAULT_* variables")?
        .settings();
    let shutdown = shutdown_signal()?;
    let event_source = cli.queue_file.map(|queue_file| EventSourceConfig {
        batch_size: usize::from(cli.batch_size),
        batching_window: cli.batching_window,
        visibility_timeout: cli.visibility_timeout,
        redrive: (cli.max_receive_count > 0).then(|| Redrive {
            max_receive_count: cli.max_receive_count,
            dead_letter_queue: cli.dead_letter_queue.clone(),
        }),
        ..EventSourceConfig::new(queue_file, cli.queue.clone())
    });
    if let Some(source) = &event_source {
        eprintln!(
            "lambda-emulator: event source: queue {} in {} (batches of up to {}, visibility timeout {}, {})",
            source.queue,
            source.queue_file.display(),
            source.batch_size,
            humantime::format_duration(source.visibility_timeout),
            match &source.redrive {
                Some(r) => format!(
                    "dead letters to {} after {} receives",
                    r.dead_letter_queue, r.max_receive_count
                ),
                None => "no dead-letter queue".to_owned(),
            }
        );
    }
    let config = EmulatorConfig {
        function_url: !cli.no_function_url,
        event_source,
        function: cli.function,
        function_name: cli.function_name,
        function_version: cli.function_version,
        memory_size_mb: cli.memory_size,
        invocation_timeout: cli.timeout,
        idle_timeout: cli.idle_timeout,
        faults,
        ..EmulatorConfig::new("")
    };
    let emulator = Emulator::bind(config.clone(), cli.listen, cli.runtime_api).await?;
    eprintln!(
        "lambda-emulator: function URL http://{} -> {} (Runtime API {}, timeout {}, idle timeout {})",
        emulator.url_addr(),
        config.function.display(),
        emulator.runtime_api_addr(),
        humantime::format_duration(config.invocation_timeout),
        humantime::format_duration(config.idle_timeout),
    );
    emulator.serve(shutdown).await?;
    eprintln!("lambda-emulator: stopped");
    Ok(())
}

/// Resolves on SIGTERM (what `lab` and Kubernetes send) or Ctrl-C. The handlers are installed
/// when this is called, not when the future is first polled: called before the listeners are
/// bound, a SIGTERM that arrives while the emulator is starting stops it cleanly instead of
/// killing it by the signal's default action.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
