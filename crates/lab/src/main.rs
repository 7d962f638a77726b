//! The `lab` command line: `lab up`, and for the workshop `lab fault`, `lab check` and
//! `lab incident`.

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
    /// Show or change the faults injected into the running workloads (error rate, added
    /// latency, named scenarios).
    #[command(long_about = FAULT_ABOUT, after_help = lab::fault::scenarios_help())]
    Fault(FaultArgs),
    /// Check a workshop module's exercise against the running lab (exit 0 when done).
    #[command(long_about = CHECK_ABOUT)]
    Check(CheckArgs),
    /// Hide two or three problems in the running lab for the workshop's incident (module 17).
    #[command(long_about = INCIDENT_ABOUT)]
    Incident(IncidentArgs),
    /// Show the orders queue and its dead letters (orders-dlq); --redrive moves the dead
    /// letters back to be tried again.
    Queue(QueueArgs),
}

#[derive(Debug, clap::Args)]
struct QueueArgs {
    /// The otel-lab checkout [default: the nearest directory at or above the current one
    /// that contains crates/collector/configs].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// The lab's state directory [default: REPO/.lab].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Move every dead letter back to the orders queue first.
    #[arg(long)]
    redrive: bool,
    /// Most dead letters listed.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

const INCIDENT_ABOUT: &str = "\
Hide two or three problems in the running lab, chosen by the seed, for the workshop's
incident (docs/workshop/17-incident.md). Every workload's faults are cleared first; the
problems are then switched on hidden: `lab fault` shows only how many there are, and the
spans carry no fault.injected event. Find them from traces and metrics, then name them with
`lab check 17 --answer problems=NAME,NAME`. `lab fault --clear` ends the incident.

  lab incident --seed 7             start incident 7 (the same problems on every machine)
  lab incident --seed 7 --reveal    print incident 7's problems without starting it (for
                                    the instructor's answer sheet)";

#[derive(Debug, clap::Args)]
struct IncidentArgs {
    /// Which incident: the same seed hides the same problems everywhere.
    #[arg(long)]
    seed: u64,
    /// Print the incident's problems instead of starting it.
    #[arg(long)]
    reveal: bool,
}

const FAULT_ABOUT: &str = "\
Show or change the faults injected into the running workloads, through each one's
GET|POST /admin/faults.

  lab fault                                            every workload's current settings
  lab fault payment-service payment_gateway_timeout    turn a named scenario on
  lab fault payment-service --off payment_gateway_timeout
  lab fault payment-service --error-rate 0.2 --latency-ms 300
  lab fault inventory-service --clear                  one workload back to no faults
  lab fault --clear                                    every workload back to no faults

Scenarios named are added to those already on; settings not given keep their value.
Exit status: 0 when every workload asked answered, 1 otherwise.";

#[derive(Debug, clap::Args)]
struct FaultArgs {
    /// The workload to show or change (order-service, inventory-service, fraud-check,
    /// payment-service) [default: all, to list or --clear].
    #[arg(value_name = "WORKLOAD")]
    workload: Option<String>,
    /// Named scenarios to turn on.
    #[arg(value_name = "SCENARIO", requires = "workload")]
    scenarios: Vec<String>,
    /// Share of requests answered 503 at once, 0 to 1.
    #[arg(long, value_name = "RATE", requires = "workload")]
    error_rate: Option<f64>,
    /// Milliseconds added to every request.
    #[arg(long, value_name = "MS", requires = "workload")]
    latency_ms: Option<u64>,
    /// Up to this many random extra milliseconds on top of --latency-ms.
    #[arg(long, value_name = "MS", requires = "workload")]
    jitter_ms: Option<u64>,
    /// Named scenarios to turn off (repeatable).
    #[arg(long, value_name = "SCENARIO", requires = "workload")]
    off: Vec<String>,
    /// Turn every fault off (of WORKLOAD, or of all workloads).
    #[arg(long, conflicts_with_all = ["scenarios", "error_rate", "latency_ms", "jitter_ms", "off"])]
    clear: bool,
}

const CHECK_ABOUT: &str = "\
Check a workshop module's exercise (docs/workshop/NN-name.md) against the running lab: the
trace explorer's API on :16686, the Prometheus pages and the files of your checkout. Every
criterion is printed as passed (✓) or not (✗, with a hint).

Exit status: 0 when every criterion passes, 1 when one does not, 2 for a usage error
(unknown module or question), 3 when the lab is not running.";

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The module: 01, 02, ... (`lab check --list` shows them).
    #[arg(value_name = "MODULE", required_unless_present = "list")]
    module: Option<String>,
    /// An answer to one of the module's questions, as KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    answer: Vec<String>,
    /// List the modules that have a check, with their questions.
    #[arg(long, conflicts_with_all = ["module", "answer"])]
    list: bool,
    /// The otel-lab checkout whose files are checked [default: the nearest directory at or
    /// above the current one that contains crates/collector/configs].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
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
    /// Start the workloads with the workshop's planted problems on (what `make workshop`
    /// does); `lab fault` shows them and switches them off one by one.
    #[arg(long)]
    workshop: bool,
    /// Run the gateway collector with this config instead of
    /// crates/collector/configs/local/gateway.yaml (the workshop's copy in workshop/, for
    /// example: `make workshop GATEWAY=workshop/gateway.yaml`).
    #[arg(long, value_name = "FILE")]
    gateway_config: Option<PathBuf>,
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
        Command::Fault(args) => runtime.block_on(fault(args)),
        Command::Check(args) => runtime.block_on(check(args)),
        Command::Incident(args) => runtime.block_on(incident(args)),
        Command::Queue(args) => queue(args),
    }
}

fn queue(args: QueueArgs) -> ExitCode {
    let state = match args.state_dir {
        Some(dir) => dir,
        None => match lab::layout::Layout::find_checkout(args.repo.as_deref()) {
            Ok(repo) => repo.join(".lab"),
            Err(error) => {
                eprintln!("lab queue: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    match lab::dead_letters::report(&state, args.redrive, args.limit) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("lab queue: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn fault(args: FaultArgs) -> ExitCode {
    use lab::fault::{self, FaultError, FaultUpdate, LAB_NOT_RUNNING, WORKLOADS};
    let client = fault::client();
    let Some(name) = args.workload else {
        // No workload: list everything, or clear everything.
        let mut failures = Vec::new();
        let mut lines = Vec::new();
        for w in WORKLOADS {
            let result = if args.clear {
                fault::post(&client, w, &FaultUpdate::clear()).await
            } else {
                fault::get(&client, w).await
            };
            match result {
                Ok(settings) => {
                    lines.push(format!("{:<18} {}", w.name, fault::describe(&settings)))
                }
                Err(error) => {
                    lines.push(format!("{:<18} ? {error}", w.name));
                    failures.push(error);
                }
            }
        }
        if failures.len() == WORKLOADS.len()
            && failures
                .iter()
                .all(|e| matches!(e, FaultError::NotRunning { .. }))
        {
            eprintln!("lab fault: no workload answers on 127.0.0.1: {LAB_NOT_RUNNING}");
            return ExitCode::FAILURE;
        }
        if args.clear {
            println!("faults cleared:");
        }
        for line in lines {
            println!("{line}");
        }
        if !args.clear {
            print!("\n{}", fault::scenarios_help());
        }
        return if failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    };
    let report = |error: FaultError| {
        match &error {
            FaultError::NotRunning { .. } => eprintln!("lab fault: {error}: {LAB_NOT_RUNNING}"),
            _ => eprintln!("lab fault: {error}"),
        }
        ExitCode::FAILURE
    };
    let workload = match fault::workload(&name) {
        Ok(workload) => workload,
        Err(error) => return report(error),
    };
    for scenario in args.scenarios.iter().chain(&args.off) {
        if let Err(error) = fault::check_owner(workload, scenario) {
            return report(error);
        }
    }
    let changes = !args.scenarios.is_empty()
        || !args.off.is_empty()
        || args.error_rate.is_some()
        || args.latency_ms.is_some()
        || args.jitter_ms.is_some();
    let update = if args.clear {
        FaultUpdate::clear()
    } else if changes {
        // Scenarios are a set on the workload: read it, add and remove, send it whole.
        let scenarios = if args.scenarios.is_empty() && args.off.is_empty() {
            None
        } else {
            let mut current = match fault::get(&client, workload).await {
                Ok(settings) => settings.scenarios,
                Err(error) => return report(error),
            };
            current.extend(args.scenarios.iter().cloned());
            for off in &args.off {
                current.remove(off);
            }
            Some(current.into_iter().collect())
        };
        FaultUpdate {
            error_rate: args.error_rate,
            latency_ms: args.latency_ms,
            jitter_ms: args.jitter_ms,
            scenarios,
            hidden_scenarios: None,
        }
    } else {
        return match fault::get(&client, workload).await {
            Ok(settings) => {
                println!("{:<18} {}", workload.name, fault::describe(&settings));
                ExitCode::SUCCESS
            }
            Err(error) => report(error),
        };
    };
    match fault::post(&client, workload, &update).await {
        Ok(settings) => {
            println!("{:<18} {}", workload.name, fault::describe(&settings));
            ExitCode::SUCCESS
        }
        Err(error) => report(error),
    }
}

async fn incident(args: IncidentArgs) -> ExitCode {
    use lab::fault::{FaultError, LAB_NOT_RUNNING};
    if args.reveal {
        println!(
            "incident {}: {}",
            args.seed,
            lab::incident::problems(args.seed).join(", ")
        );
        return ExitCode::SUCCESS;
    }
    match lab::incident::start(args.seed).await {
        Ok(count) => {
            println!(
                "incident {}: {count} problems are hidden in the lab.\n\
                 Send traffic (traffic --duration 60s), find them in the traces and metrics, \
                 and name them: lab check 17 --answer problems=NAME,NAME\n\
                 (lab fault --clear ends the incident)",
                args.seed
            );
            ExitCode::SUCCESS
        }
        Err(error @ FaultError::NotRunning { .. }) => {
            eprintln!("lab incident: {error}: {LAB_NOT_RUNNING}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("lab incident: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn check(args: CheckArgs) -> ExitCode {
    use lab::check::{self, Answers, Context, explorer::ApiError};
    const USAGE: u8 = 2;
    const LAB_DOWN: u8 = 3;
    if args.list {
        print!("{}", check::list());
        return ExitCode::SUCCESS;
    }
    // clap requires MODULE unless --list, which returned above.
    let id = args.module.unwrap_or_default();
    let module = match check::module(&id) {
        Ok(module) => module,
        Err(error) => {
            eprintln!("lab check: {error}");
            return ExitCode::from(USAGE);
        }
    };
    let answers = match Answers::parse(module, &args.answer) {
        Ok(answers) => answers,
        Err(error) => {
            eprintln!("lab check: {error}");
            return ExitCode::from(USAGE);
        }
    };
    let repo = match Layout::find_checkout(args.repo.as_deref()) {
        Ok(repo) => repo,
        Err(error) => {
            eprintln!("lab check: {error}");
            return ExitCode::from(USAGE);
        }
    };
    let ctx = Context {
        api: check::explorer::LabApi::new(),
        repo,
        answers,
    };
    match check::evaluate(module, &ctx).await {
        Ok(criteria) => {
            print!("{}", check::render(module, &criteria));
            if criteria.iter().all(|c| c.passed()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error @ ApiError::LabNotRunning) => {
            eprintln!("lab check {}: {error}", module.id);
            ExitCode::from(LAB_DOWN)
        }
        Err(error) => {
            eprintln!("lab check {}: cannot read the lab: {error}", module.id);
            ExitCode::FAILURE
        }
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
    let specs: Vec<_> = PROCESSES
        .iter()
        .filter(|p| args.workshop || !p.workshop_only)
        .cloned()
        .collect();
    let mut plan = match lab::plan::plan(&specs, &args.only, &layout, console.colour()) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    plan.plant_problems(args.workshop);
    if let Some(config) = &args.gateway_config {
        let config = std::path::absolute(config).unwrap_or_else(|_| config.clone());
        if let Err(error) = plan.use_gateway_config(&config) {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
        console.say(&format!(
            "the gateway runs {} (--gateway-config)",
            config.display()
        ));
    }
    for note in &plan.notes {
        console.say(note);
    }
    if args.workshop {
        console.say(
            "workshop mode: the planted problems are on (`lab fault` lists them; \
             docs/workshop/README.md)",
        );
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
