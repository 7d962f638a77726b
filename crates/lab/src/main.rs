//! The `lab` command line: `lab up`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lab::console::Console;
use lab::layout::Layout;
use lab::processes::{PROCESSES, Program};
use lab::up::{Outcome, RunOptions};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Runs the otel-lab on this machine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start every process of the lab, wait until each is healthy, and keep them running
    /// until Ctrl-C.
    #[command(long_about = UP_ABOUT, after_long_help = processes_help())]
    Up(UpArgs),
}

const UP_ABOUT: &str = "\
Start every process of the lab, wait until each is healthy, and keep them running until Ctrl-C.

Before starting anything, `lab up` checks that every port it will bind on 127.0.0.1 is free,
that the workspace binaries are built and that the collector configs exist; it refuses with
the list of problems otherwise. Then it starts the processes one by one, in the order below,
waiting for each one's health check (every 200 ms, 60 s in all). Every line a process writes
is shown behind its name (coloured on a terminal unless NO_COLOR is set) and kept in
STATE_DIR/logs/NAME.log. If a process exits or is not healthy in time during startup, lab up
shows its last 20 lines, stops the others and exits non-zero. A process that dies later is
reported with its last lines; the others keep running.

Ctrl-C or SIGTERM stops the processes in reverse order (order-service first, collectors last),
each with SIGTERM and up to 10 s to flush its telemetry before SIGKILL; a second Ctrl-C kills
everything at once. Processes run in the checkout, with RUST_LOG=info unless RUST_LOG is set.
Prometheus and Grafana are started only when installed and configured.";

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// The otel-lab checkout [default: the nearest directory at or above the current one
    /// that contains crates/collector/configs].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Where SQLite files, the gateway's files and logs/ go [default: REPO/.lab].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Where the workspace binaries (collector, order-service, ..., bootstrap) are
    /// [default: the directory of this lab executable].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Start only these processes (repeatable), e.g. to run one service against a lab
    /// started elsewhere.
    #[arg(long, value_name = "NAME", num_args = 1.., value_parser = clap::builder::PossibleValuesParser::new(lab::processes::names()))]
    only: Vec<String>,
}

fn processes_help() -> String {
    let mut text = String::from("Processes, in start order:\n");
    for spec in PROCESSES {
        let ports: Vec<String> = spec
            .ports
            .iter()
            .map(|p| format!("{} {}", p.number, p.what))
            .collect();
        let program = match spec.program {
            Program::Workspace(name) => name.to_owned(),
            Program::Optional { name, .. } => format!("{name}, if installed"),
        };
        text.push_str(&format!(
            "  {:<18} ({program}) ports: {}\n",
            spec.name,
            ports.join(", ")
        ));
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the children's parent-death signal is tied to the thread that spawned
    // them, so that thread must live as long as the lab.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("lab: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    }
}

async fn up(args: UpArgs) -> ExitCode {
    // Listen before any child exists, so an early Ctrl-C stops them in order too.
    let mut interrupts = match listen_for_interrupts() {
        Ok(interrupts) => interrupts,
        Err(error) => {
            eprintln!("lab up: cannot listen for signals: {error}");
            return ExitCode::FAILURE;
        }
    };
    let layout = match Layout::resolve(
        args.repo.as_deref(),
        args.state_dir.as_deref(),
        args.bin_dir.as_deref(),
    ) {
        Ok(layout) => layout,
        Err(error) => {
            eprintln!("lab up: {error}");
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<&str> = PROCESSES.iter().map(|p| p.name).collect();
    let console = Console::stdout(&names);
    let plan = match lab::plan::plan(PROCESSES, &args.only, &layout, console.colour()) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    for note in &plan.notes {
        console.say(note);
    }

    let mut footer = String::new();
    if plan.launches.iter().any(|l| l.name == "collector-gateway") {
        footer.push_str(
            "next: run `make traffic` in another terminal, then open http://127.0.0.1:16686\n",
        );
    }
    footer.push_str(&format!(
        "logs: {}/logs/<process>.log · Ctrl-C stops the lab",
        layout.state.display()
    ));

    let outcome = lab::up::run(
        &plan.launches,
        &console,
        &RunOptions::default(),
        &mut interrupts,
        &footer,
    )
    .await;
    match outcome {
        Outcome::Stopped | Outcome::Interrupted => ExitCode::SUCCESS,
        Outcome::StartupFailed { .. } | Outcome::AllExited => ExitCode::FAILURE,
    }
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closing) all ask the lab to stop.
fn listen_for_interrupts() -> std::io::Result<mpsc::UnboundedReceiver<()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
