//! CPU cost of instrumenting one request, in process (no sockets): an axum route behind the
//! server layer whose handler runs one DB statement span, adds to a counter and writes a log
//! line, against the same route with none of it. Telemetry is exported to an OTLP receiver
//! in a child process (its decoding is not ours to pay), and the figure is this process's
//! CPU time per request (`CLOCK_PROCESS_CPUTIME_ID`), so the batch processors' and the
//! exporters' work is counted too.
//!
//! `cargo bench -p telemetry --bench request` (part of `make bench`).

#[path = "../src/testing.rs"]
#[allow(dead_code)]
mod testing;

use std::borrow::Cow;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group};
use opentelemetry::KeyValue;
use telemetry::db::{DbClient, Statement};
use tower::ServiceExt as _;

// As in every workload binary: the allocator is part of what telemetry costs.
#[global_allocator]
static ALLOCATOR: telemetry::Allocator = telemetry::Allocator;

/// The process's CPU time so far, every thread included.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct NoError;

fn instrumented() -> Router {
    let db: DbClient<NoError> = DbClient::new("sqlite", |_| Cow::Borrowed("never"));
    let lookups = opentelemetry::global::meter("bench")
        .u64_counter("inventory.lookups")
        .build();
    Router::new()
        .route(
            "/inventory/{sku}",
            get(
                move |axum::extract::Path(sku): axum::extract::Path<String>| {
                    let db = db.clone();
                    let lookups = lookups.clone();
                    async move {
                        let stock = db
                            .statement(
                                Statement::new(
                                    "SELECT",
                                    "products",
                                    "SELECT stock FROM products WHERE sku = ?1",
                                ),
                                || Ok(std::hint::black_box(sku.len() as u64)),
                            )
                            .unwrap();
                        lookups.add(1, &[KeyValue::new("inventory.found", true)]);
                        tracing::info!(sku = %sku, stock, "stock looked up");
                        stock.to_string()
                    }
                },
            ),
        )
        .layer(telemetry::http_server::layer())
}

fn bare() -> Router {
    Router::new().route(
        "/inventory/{sku}",
        get(
            |axum::extract::Path(sku): axum::extract::Path<String>| async move {
                std::hint::black_box(sku.len() as u64).to_string()
            },
        ),
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut receiver = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(RECEIVER_ARG)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting the receiver process");
    let mut endpoint = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(receiver.stdout.take().unwrap()),
        &mut endpoint,
    )
    .expect("the receiver's endpoint");
    // SAFETY: set before anything reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.trim());
        // The handler's log line passes the console filter and the OTLP bridge, as it
        // does in a service at the default level.
        std::env::set_var("RUST_LOG", "warn,request=info");
    }
    // The console copy of each log line is still formatted and written, as in a service,
    // but to /dev/null, so criterion's report stays readable.
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    // SAFETY: both are open descriptors; stderr now refers to /dev/null.
    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&devnull), 2) };
    let guard = runtime.block_on(async {
        telemetry::init(telemetry::ServiceInfo {
            name: "bench",
            version: "0",
        })
        .unwrap()
    });

    let mut group = c.benchmark_group("request");
    for (name, router) in [("bare", bare()), ("instrumented", instrumented())] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = process_cpu();
                runtime.block_on(async {
                    for _ in 0..iters {
                        let request = http::Request::get("/inventory/KB-001")
                            .body(Body::empty())
                            .unwrap();
                        let response = router.clone().oneshot(request).await.unwrap();
                        assert!(response.status().is_success());
                    }
                });
                process_cpu() - started
            });
        });
    }
    group.finish();
    runtime.block_on(guard.shutdown());
    let _ = receiver.kill();
    let _ = receiver.wait();
}

/// Run as `request RECEIVER_ARG`, the bench binary is the receiver: it prints its endpoint
/// and keeps what it is sent until it is killed.
const RECEIVER_ARG: &str = "--otlp-receiver";

fn receive() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let receiver = testing::OtlpReceiver::start().await.unwrap();
        println!("{}", receiver.endpoint());
        std::future::pending::<()>().await;
    });
}

criterion_group!(benches, bench);

fn main() {
    if std::env::args().any(|a| a == RECEIVER_ARG) {
        receive();
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
