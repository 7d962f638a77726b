//! `lambda-emulator`: runs an unmodified Lambda `bootstrap` locally behind a Function URL.
//! See [`lambda_handler::emulator`] for what it emulates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use lambda_handler::emulator::{Emulator, EmulatorConfig};
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
    let config = EmulatorConfig {
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
