//! What telemetry costs a real service: the release inventory-service binary answers
//! `GET /inventory/{sku}` (a server span, a DB span, RED metrics, a log line) pinned to one
//! core, once with `OTEL_SDK_DISABLED=true` and once exporting to an OTLP receiver on the
//! other core. The figure is the service's own CPU time (user + system, every thread, from
//! /proc) per request, so background export work is counted too; the difference between
//! the two runs is what telemetry adds.
//!
//! `cargo bench -p inventory-service --bench telemetry_cost` (part of `make bench`).
//! REQUESTS (default 40000), CONCURRENCY (default 8) and ROUNDS (default 3) change the load.

use std::time::{Duration, Instant};

use telemetry::testing::{OtlpReceiver, ServiceProcess};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (utime, stime) of every thread the process ever had, in seconds.
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap();
    // USER_HZ is 100 on every Linux this lab runs on.
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

fn pin(pid: u32, cpu: &str) -> bool {
    std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Clone, Copy)]
struct Run {
    user_us_per_request: f64,
    system_us_per_request: f64,
    requests_per_second: f64,
}

impl Run {
    fn cpu_us_per_request(&self) -> f64 {
        self.user_us_per_request + self.system_us_per_request
    }
}

/// The run with the median total CPU per request.
fn median(runs: &[Run]) -> Run {
    let mut runs = runs.to_vec();
    runs.sort_by(|a, b| a.cpu_us_per_request().total_cmp(&b.cpu_us_per_request()));
    runs[runs.len() / 2]
}

/// Sends `requests` requests over `concurrency` keep-alive connections, each sending its
/// next request when the previous answer is in. The client is hyper's bare HTTP/1.1
/// connection: with reqwest, the generator's own core ran out first and the service idled
/// half the time, so its CPU per request included waking up for each request and swung
/// from run to run.
async fn drive(url: &str, requests: usize, concurrency: usize) -> Duration {
    let authority: http::uri::Authority = url
        .strip_prefix("http://")
        .expect("the service's url is http://host:port")
        .parse()
        .expect("the service's address");
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let next = next.clone();
            let authority = authority.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .expect("connecting to the service");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .expect("HTTP/1.1 handshake");
                tokio::spawn(connection);
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                    let request = http::Request::get("/inventory/KB-001")
                        .header(http::header::HOST, authority.as_str())
                        .header(http::header::USER_AGENT, "telemetry-cost-bench")
                        .body(http_body_util::Empty::<bytes::Bytes>::new())
                        .expect("a valid request");
                    let response = sender.send_request(request).await.expect("request failed");
                    assert!(response.status().is_success(), "{}", response.status());
                    http_body_util::BodyExt::collect(response.into_body())
                        .await
                        .expect("reading the body");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a load worker panicked");
    }
    started.elapsed()
}

async fn measure(binary: &std::path::Path, receiver: &OtlpReceiver, disabled: bool) -> Run {
    let requests = env_or("REQUESTS", 40_000);
    let concurrency = env_or("CONCURRENCY", 8);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let service = ServiceProcess::spawn(
        binary,
        &[
            ("OTEL_SDK_DISABLED", disabled.to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            // One core, one worker: a second worker thread on the same core only takes
            // turns with the first, and made the figures swing between runs by a factor 2.
            ("TOKIO_WORKER_THREADS", "1".to_owned()),
            (
                "DATABASE_URL",
                dir.path().join("inventory.db").display().to_string(),
            ),
        ],
    )
    .expect("starting inventory-service");
    let pid = service.pid();
    let pinned = pin(pid, "0");
    let url = service.url();
    drive(&url, requests / 10, concurrency).await;
    // Let the warm-up's telemetry leave before counting.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = cpu_seconds(pid);
    let elapsed = drive(&url, requests, concurrency).await;
    // The batch processors export every 5 s: wait for the last batch to be paid for.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = cpu_seconds(pid);
    if !pinned {
        eprintln!("(taskset could not pin the service to CPU 0: figures are unpinned)");
    }
    drop(service);
    Run {
        user_us_per_request: (after.0 - before.0) * 1e6 / requests as f64,
        system_us_per_request: (after.1 - before.1) * 1e6 / requests as f64,
        requests_per_second: requests as f64 / elapsed.as_secs_f64(),
    }
}

fn main() {
    // `cargo bench` passes --bench; a `cargo test` run of benches passes nothing: skip there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("bench binaries live in target/<profile>/deps")
        .join("inventory-service");
    assert!(
        binary.exists(),
        "{} is missing: cargo bench builds it with the bench",
        binary.display()
    );
    // The load generator and the receiver stay off the service's core.
    let _ = pin(std::process::id(), "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let receiver = OtlpReceiver::start().await.expect("starting the receiver");
        // Off and on take turns, and the figures are those of the median round: on a shared
        // 2-core virtual machine one run can take twice the CPU of the next for reasons
        // that have nothing to do with telemetry (steal time, the kernel's share).
        let rounds = env_or("ROUNDS", 3).max(1);
        let (mut offs, mut ons) = (Vec::new(), Vec::new());
        let mut spans = 0;
        println!("inventory-service GET /inventory/{{sku}}, service pinned to one core:");
        println!("  round  telemetry  user µs  system µs  total µs/request  requests/s");
        for round in 1..=rounds {
            let off = measure(&binary, &receiver, true).await;
            let spans_before = receiver.spans().len();
            let on = measure(&binary, &receiver, false).await;
            spans += receiver.spans().len() - spans_before;
            for (name, run) in [("off", off), ("on", on)] {
                println!(
                    "  {round:5}  {name:9}  {:7.1}  {:9.1}  {:16.1}  {:10.0}",
                    run.user_us_per_request,
                    run.system_us_per_request,
                    run.cpu_us_per_request(),
                    run.requests_per_second
                );
            }
            offs.push(off);
            ons.push(on);
        }
        let (off, on) = (median(&offs), median(&ons));
        let requests = env_or("REQUESTS", 40_000) * 11 / 10 * rounds;
        println!("median rounds of {rounds}:");
        println!(
            "  telemetry off: {:6.1} CPU-µs/request ({:.1} user), {:8.0} requests/s",
            off.cpu_us_per_request(),
            off.user_us_per_request,
            off.requests_per_second
        );
        println!(
            "  telemetry on:  {:6.1} CPU-µs/request ({:.1} user), {:8.0} requests/s",
            on.cpu_us_per_request(),
            on.user_us_per_request,
            on.requests_per_second
        );
        println!(
            "  telemetry adds {:.1} CPU-µs/request ({:.1} user); throughput ratio on/off {:.2}",
            on.cpu_us_per_request() - off.cpu_us_per_request(),
            on.user_us_per_request - off.user_us_per_request,
            on.requests_per_second / off.requests_per_second
        );
        println!(
            "  spans received: {spans} for {requests} requests ({:.2} per request)",
            spans as f64 / requests as f64
        );
    });
}
