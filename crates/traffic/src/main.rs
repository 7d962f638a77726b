//! `traffic`: see the crate documentation.

use std::process::ExitCode;

use clap::Parser as _;
use traffic::cli::Args;

#[global_allocator]
static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;

fn main() -> ExitCode {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_none() {
        // Per-request warnings would scroll over the progress bar and the summary; the
        // failures are counted and linked in the summary instead.
        // SAFETY: no other thread exists yet (the runtime is built below).
        unsafe { std::env::set_var("RUST_LOG", "error") };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("traffic: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let guard = match telemetry::init(telemetry::ServiceInfo {
            name: "traffic",
            version: env!("CARGO_PKG_VERSION"),
        }) {
            Ok(guard) => guard,
            Err(err) => {
                eprintln!("traffic: cannot set up telemetry: {err:#}");
                return ExitCode::FAILURE;
            }
        };
        let code = match traffic::run(&args, telemetry::shutdown_signal()).await {
            Ok(summary) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&summary).expect("a summary serialises")
                    );
                } else {
                    print!("{}", summary.to_text());
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("traffic: {err}");
                ExitCode::from(2)
            }
        };
        guard.shutdown().await;
        code
    })
}
