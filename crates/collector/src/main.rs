//! The `collector` binary: `collector --config FILE` runs, `collector validate` checks a
//! config and lists every problem, `collector components` lists what can be configured.

use clap::{Parser, Subcommand};
use collector::config::{self, Errors};
use collector::{registry, service};
use std::path::PathBuf;
use std::process::ExitCode;

/// An OpenTelemetry collector that reads the Go collector's YAML configuration.
///
/// Config files use the Go collector's format: receivers, processors, exporters, connectors
/// and extensions define components by id (`type[/name]`), and `service.pipelines` wires them
/// (traces, metrics, logs). `${env:VAR}` and `${env:VAR:-default}` are expanded in values.
/// Several --config files are merged in order: maps deep-merged, lists replaced.
#[derive(Parser)]
#[command(name = "collector", version, about, long_about)]
struct Cli {
    /// Config file (YAML). Repeat to merge several files, later ones winning.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Log level: error, warn, info, debug, trace. RUST_LOG, when set, wins.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check the configuration and report every problem with its file, line and key path.
    Validate,
    /// List every component type this collector knows, with a one-line description.
    Components,
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,hyper=warn,tower=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn print_components() {
    fn signals(s: &[collector::pdata::Signal]) -> String {
        s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
    println!("receivers:");
    for f in registry::receivers() {
        println!(
            "  {:<24} {} [{}]",
            f.kind,
            f.description,
            signals(f.signals)
        );
    }
    println!("processors:");
    for f in registry::processors() {
        println!(
            "  {:<24} {} [{}]",
            f.kind,
            f.description,
            signals(f.signals)
        );
    }
    println!("exporters:");
    for f in registry::exporters() {
        let name = if f.aliases.is_empty() {
            f.kind.to_string()
        } else {
            format!("{} ({})", f.kind, f.aliases.join(", "))
        };
        println!("  {:<24} {} [{}]", name, f.description, signals(f.signals));
    }
    println!("connectors:");
    for f in registry::connectors() {
        let pairs: Vec<String> = f.pairs.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
        println!("  {:<24} {} [{}]", f.kind, f.description, pairs.join(", "));
    }
    println!("extensions:");
    for f in registry::extensions() {
        println!("  {:<24} {}", f.kind, f.description);
    }
}

/// Loads and checks the config; prints warnings and errors. None when there are errors.
fn load(paths: &[PathBuf]) -> Option<config::Config> {
    let (cfg, report) = check(paths);
    eprint!("{report}");
    cfg
}

/// Loads and checks the config: the config when it is valid, and the report of its
/// warnings and errors (each on a line, in the order a reader meets them in the files).
fn check(paths: &[PathBuf]) -> (Option<config::Config>, String) {
    use std::fmt::Write as _;
    let mut errors = Errors::default();
    if paths.is_empty() {
        return (
            None,
            "error: no configuration given; use --config FILE (see --help)\n".into(),
        );
    }
    let cfg = config::load_files(paths, &mut errors);
    if let Some(cfg) = &cfg {
        service::validate(cfg, &mut errors);
    }
    let mut report = String::new();
    for w in &errors.warnings {
        let _ = writeln!(report, "warning: {w}");
    }
    if !errors.is_ok() {
        errors
            .errors
            .sort_by_key(|e| e.loc.as_ref().map(|l| (l.file.clone(), l.line, l.column)));
        let n = errors.errors.len();
        let _ = writeln!(
            report,
            "invalid configuration ({n} error{}):",
            if n == 1 { "" } else { "s" }
        );
        for e in &errors.errors {
            let _ = writeln!(report, "  {e}");
        }
        return (None, report);
    }
    (cfg, report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Components) => {
            print_components();
            ExitCode::SUCCESS
        }
        Some(Command::Validate) => match load(&cli.config) {
            Some(cfg) => {
                println!(
                    "configuration is valid: {} pipelines, {} receivers, {} processors, {} exporters, {} connectors, {} extensions",
                    cfg.pipelines.len(),
                    cfg.receivers.len(),
                    cfg.processors.len(),
                    cfg.exporters.len(),
                    cfg.connectors.len(),
                    cfg.extensions.len()
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        None => {
            let Some(cfg) = load(&cli.config) else {
                return ExitCode::FAILURE;
            };
            let level = cfg.telemetry.logs.level.clone().unwrap_or(cli.log_level);
            init_logging(&level);
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(run(&cli.config, cfg))
        }
    }
}

async fn run(paths: &[PathBuf], cfg: config::Config) -> ExitCode {
    let mut cfg = cfg;
    // Before anything listens, so a signal during start-up is not the default action.
    let mut signals = Signals::new();
    let mut svc = match service::Service::start(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        pipelines = cfg.pipelines.len(),
        "everything is ready; send telemetry"
    );
    let mut requests = svc.host.reload_requests();
    loop {
        let reply = match signals.next(&mut requests).await {
            Signal::Stop => break,
            Signal::Reload(reply) => reply,
        };
        tracing::info!("reloading the configuration");
        let (new_cfg, report) = check(paths);
        eprint!("{report}");
        let outcome = match new_cfg {
            None => {
                tracing::error!(
                    "the new configuration is invalid (every problem is listed above); the running one stays"
                );
                Err(format!("{report}the running configuration stays\n"))
            }
            Some(new_cfg) => {
                let (next, outcome) = svc.reload(&cfg, &new_cfg).await;
                svc = next;
                match outcome {
                    Ok(()) => {
                        cfg = new_cfg;
                        tracing::info!(pipelines = cfg.pipelines.len(), "configuration reloaded");
                        Ok(format!("{report}configuration reloaded\n"))
                    }
                    Err(e) => {
                        tracing::error!(
                            "the new configuration could not start ({e:#}); the previous one runs again"
                        );
                        Err(format!(
                            "{report}the new configuration could not start: {e:#}\nthe previous one runs again\n"
                        ))
                    }
                }
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
    tracing::info!("shutting down: stopping receivers, flushing processors, draining exporters");
    svc.shutdown().await;
    tracing::info!("shutdown complete");
    ExitCode::SUCCESS
}

enum Signal {
    /// SIGHUP (no one to answer), or `POST /reload` waiting for the outcome.
    Reload(Option<collector::component::ReloadReply>),
    Stop,
}

/// SIGHUP asks for a reload; Ctrl-C and SIGTERM for a stop. Registered once, so a signal
/// that arrives during a reload is not lost.
struct Signals {
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                hangup: signal(SignalKind::hangup()).expect("SIGHUP handler"),
                terminate: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(
        &mut self,
        requests: &mut tokio::sync::mpsc::Receiver<collector::component::ReloadReply>,
    ) -> Signal {
        #[cfg(unix)]
        tokio::select! {
            _ = self.hangup.recv() => Signal::Reload(None),
            Some(reply) = requests.recv() => Signal::Reload(Some(reply)),
            _ = self.terminate.recv() => Signal::Stop,
            _ = tokio::signal::ctrl_c() => Signal::Stop,
        }
        #[cfg(not(unix))]
        tokio::select! {
            Some(reply) = requests.recv() => Signal::Reload(Some(reply)),
            _ = tokio::signal::ctrl_c() => Signal::Stop,
        }
    }
}
