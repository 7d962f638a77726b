//! `traffic`, the load generator of otel-lab (`make traffic`).
//!
//! It plays shoppers against order-service (and inventory-service for browsing), the left
//! edge of the lab's diagram: catalogue and product views, single- and multi-item orders,
//! order look-ups, and the failures worth tracing — declined cards, card-gateway timeouts,
//! fraud-rejected customers, invalid orders, unknown skus. The run is always bounded (a
//! duration or a request count; Ctrl-C stops it early). It is an instrumented client
//! itself: every request is the root span of a new trace, propagated with `traceparent`,
//! and the summary links the slowest and a failed request to the trace explorer.

pub mod cli;
pub mod mix;
pub mod progress;
pub mod report;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::Value;
use telemetry::http_client::TracedClient;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use cli::Args;
use progress::{Counters, Progress};
use report::Summary;
use workload::{Sample, Workload};

/// The skus used when the catalogue cannot be read (inventory-service's seed data).
pub const FALLBACK_SKUS: [&str; 8] = [
    "KB-001", "MS-002", "MN-003", "HD-004", "WC-005", "DK-006", "CB-007", "SD-008",
];

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error(
        "cannot reach order-service at {target} ({reason}): is the lab running? try `make run`"
    )]
    Unreachable { target: String, reason: String },
    /// Every request of the scenario goes to inventory-service, and it does not answer.
    #[error(
        "cannot reach inventory-service at {inventory} ({reason}), where every request of this scenario goes: \
         is it published there? (--inventory or TRAFFIC_INVENTORY; the Kind lab publishes it on 127.0.0.1:8082)"
    )]
    InventoryUnreachable { inventory: String, reason: String },
}

/// Runs the traffic `args` describe until its bound or `stop`, and summarises it.
pub async fn run(args: &Args, stop: impl Future<Output = ()>) -> Result<Summary, TrafficError> {
    let client = TracedClient::new(args.timeout);
    check_reachable(client.inner(), &args.target).await?;
    let skus = match catalogue(client.inner(), &args.inventory).await {
        Ok(skus) => skus,
        Err(miss) => {
            // Requests to an inventory-service nobody listens for fail one by one; say so
            // up front, or refuse a run in which every request would.
            let share = mix::inventory_share(args.scenario);
            if miss.unreachable && share == 100 {
                return Err(TrafficError::InventoryUnreachable {
                    inventory: args.inventory.clone(),
                    reason: miss.reason,
                });
            }
            eprintln!(
                "traffic: cannot read the catalogue at {} ({}); using the seed skus",
                miss.url, miss.reason
            );
            if miss.unreachable && share > 0 {
                eprintln!(
                    "traffic: {share}% of this scenario's requests go to inventory-service at {} and will fail: \
                     is it published there? (--inventory or TRAFFIC_INVENTORY)",
                    args.inventory
                );
            }
            FALLBACK_SKUS.iter().map(|s| (*s).to_owned()).collect()
        }
    };

    let seed = args.seed.unwrap_or_else(rand::random);
    let (requests, duration) = args.bounds();
    eprintln!(
        "traffic: {} scenario at {} req/s, {} (concurrency {}, seed {seed}) -> {}",
        format!("{:?}", args.scenario).to_lowercase(),
        args.rate,
        match (requests, duration) {
            (Some(n), Some(d)) => format!("{n} requests or {}", humantime::format_duration(d)),
            (Some(n), None) => format!("{n} requests"),
            (None, Some(d)) => format!("for {}", humantime::format_duration(d)),
            (None, None) => unreachable!("bounds() always bounds the run"),
        },
        args.concurrency,
        args.target
    );

    let workload = Workload::new(client, &args.target, &args.inventory, skus.clone());
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(counters.clone(), requests, duration);
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut rng = StdRng::seed_from_u64(seed);
    let semaphore = Arc::new(Semaphore::new(args.concurrency as usize));
    let mut in_flight: JoinSet<Sample> = JoinSet::new();
    let mut samples = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    // When every slot is busy, skip the missed starts rather than bursting afterwards.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let until_deadline = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop, until_deadline);

    let mut sent = 0u64;
    let mut interrupted = false;
    while requests.is_none_or(|n| sent < n) {
        let permit = tokio::select! {
            biased;
            () = &mut stop => { interrupted = true; break; }
            () = &mut until_deadline => break,
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                samples.extend(done.ok());
                continue;
            }
            _ = interval.tick() => tokio::select! {
                biased;
                () = &mut stop => { interrupted = true; break; }
                () = &mut until_deadline => break,
                permit = semaphore.clone().acquire_owned() => {
                    permit.expect("the semaphore is never closed")
                }
            },
        };
        let request = mix::plan(args.scenario, &skus, &mut rng);
        sent += 1;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let workload = workload.clone();
        let counters = counters.clone();
        in_flight.spawn(async move {
            let sample = workload.send(request).await;
            drop(permit);
            counters.done.fetch_add(1, Ordering::Relaxed);
            if sample.is_error() {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            } else if sample.status.is_some_and(|s| s >= 400) {
                counters.client_errors.fetch_add(1, Ordering::Relaxed);
            }
            sample
        });
    }
    // Requests already sent finish (each is bounded by --timeout) so the summary is whole.
    while let Some(done) = in_flight.join_next().await {
        samples.extend(done.ok());
    }
    let elapsed = started.elapsed();
    progress.finish();
    Ok(Summary::new(
        &samples,
        elapsed,
        args.scenario,
        seed,
        &args.explorer,
        interrupted,
    ))
}

/// Any HTTP answer from order-service's health check will do; only no answer stops the run.
async fn check_reachable(client: &reqwest::Client, target: &str) -> Result<(), TrafficError> {
    let url = format!("{}/healthz", target.trim_end_matches('/'));
    match client
        .get(&url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => Err(TrafficError::Unreachable {
            target: target.to_owned(),
            reason: workload::describe(&err),
        }),
    }
}

/// Why the catalogue could not be read.
struct CatalogueMiss {
    url: String,
    reason: String,
    /// No HTTP answer at all (nothing listens there), as opposed to a bad one.
    unreachable: bool,
}

/// The skus on sale, from `GET /inventory`.
async fn catalogue(
    client: &reqwest::Client,
    inventory: &str,
) -> Result<Vec<String>, CatalogueMiss> {
    let url = format!("{}/inventory", inventory.trim_end_matches('/'));
    let miss = |reason: String, unreachable: bool| CatalogueMiss {
        url: url.clone(),
        reason,
        unreachable,
    };
    let response = client
        .get(&url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| miss(workload::describe(&e), true))?;
    if !response.status().is_success() {
        return Err(miss(format!("HTTP {}", response.status()), false));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| miss(e.to_string(), false))?;
    let products = body
        .as_array()
        .or_else(|| body.get("products").and_then(Value::as_array))
        .ok_or_else(|| miss("the answer is not a list of products".to_owned(), false))?;
    let skus: Vec<String> = products
        .iter()
        .filter_map(|p| p.get("sku").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if skus.is_empty() {
        return Err(miss("the catalogue is empty".to_owned(), false));
    }
    Ok(skus)
}
