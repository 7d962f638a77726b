//! The command line of `traffic` (also used by `make traffic`).

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Drives realistic traffic through the otel-lab services and points at the traces to read.
#[derive(Debug, Clone, Parser)]
#[command(name = "traffic", version, about)]
pub struct Args {
    /// Base URL of order-service.
    #[arg(long, env = "TRAFFIC_TARGET", default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Base URL of inventory-service, for browsing the catalogue.
    #[arg(
        long,
        env = "TRAFFIC_INVENTORY",
        default_value = "http://127.0.0.1:8082"
    )]
    pub inventory: String,
    /// Requests started per second.
    #[arg(long, default_value_t = 5.0, value_parser = positive_rate)]
    pub rate: f64,
    /// How long to send traffic ("30s", "2m"). Default 30s unless --requests is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many requests (with --duration, whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Requests in flight at most; when all are busy the rate drops.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// What kind of traffic to send.
    #[arg(long, value_enum, default_value_t = Scenario::Mixed)]
    pub scenario: Scenario,
    /// Base URL of the trace explorer, for the links printed at the end.
    #[arg(
        long,
        env = "TRAFFIC_EXPLORER",
        default_value = "http://127.0.0.1:16686"
    )]
    pub explorer: String,
    /// Seed of the request mix, to replay the same sequence (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Time limit of one request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the summary as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The request mixes; see [`crate::mix`] for the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Catalogue and product pages only: no writes.
    Browse,
    /// Shoppers placing single- and multi-item orders and checking on them.
    Checkout,
    /// Mostly healthy shopping with a realistic share of failures.
    Mixed,
    /// Mostly failures: declined cards, gateway timeouts, invalid orders, unknown skus.
    Failures,
}

impl Args {
    /// The run's bounds: a count, a duration, or both; 30 s when neither is given.
    pub fn bounds(&self) -> (Option<u64>, Option<Duration>) {
        match (self.requests, self.duration) {
            (None, None) => (None, Some(Duration::from_secs(30))),
            bounds => bounds,
        }
    }
}

fn positive_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw.parse().map_err(|e| format!("{e}"))?;
    if rate.is_finite() && rate > 0.0 && rate <= 10_000.0 {
        Ok(rate)
    } else {
        Err("the rate must be above 0 and at most 10000 requests per second".to_owned())
    }
}
