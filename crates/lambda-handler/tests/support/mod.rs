//! Runs the real `lambda-emulator` binary for the tests and reads what it logs, and reads
//! what the function exported to the in-process OTLP receiver of `telemetry::testing`.
#![allow(dead_code)] // each test file uses its own part of the support code

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use telemetry::testing::{OtlpReceiver, ReceivedSpan, attr};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The real function binary.
pub const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_bootstrap");

pub struct RunningEmulator {
    child: Child,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl RunningEmulator {
    /// Starts the emulator on a free port for `function`, with extra CLI args and env.
    pub async fn start(function: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-emulator"));
        command
            .arg("--function")
            .arg(function)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("OTEL_SDK_DISABLED", "true")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("lambda-emulator starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines_log = log.clone();
        tokio::spawn(async move {
            let mut url_tx = Some(url_tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                if let Some(rest) = line.split("function URL ").nth(1)
                    && let Some(url) = rest.split_whitespace().next()
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url.to_owned());
                }
                lines_log.lock().unwrap().push(line);
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(30), url_rx)
            .await
            .expect("the emulator announces its URL")
            .expect("the emulator announces its URL before exiting");
        Self { child, url, log }
    }

    /// How many times the function process was started.
    pub fn cold_starts(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("cold start: started"))
            .count()
    }

    /// The pid of the most recently started function process.
    pub fn function_pid(&self) -> Option<u32> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for the emulator to exit; returns whether it exited cleanly.
    pub async fn stop(mut self) -> bool {
        if let Some(pid) = self.child.id() {
            // SIGTERM, as `lab` stops it, so the emulator stops its function process too.
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await,
            Ok(Ok(status)) if status.success()
        )
    }
}

/// Writes an executable shell script standing in for a broken function.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The environment that sends the function's telemetry to `receiver` over OTLP/HTTP (the
/// protocol the function uses inside Lambda), plus `extra`.
pub fn otel_env(receiver: &OtlpReceiver, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("OTEL_SDK_DISABLED".to_owned(), "false".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            receiver.http_endpoint(),
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES".to_owned(),
            "deployment.environment.name=test".to_owned(),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Starts the emulator running the real function with `env`.
pub async fn start_function(args: &[&str], env: &[(String, String)]) -> RunningEmulator {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    RunningEmulator::start(BOOTSTRAP.as_ref(), args, &env).await
}

/// The spans named `name` received so far.
pub fn spans_named(receiver: &OtlpReceiver, name: &str) -> Vec<ReceivedSpan> {
    receiver
        .spans()
        .into_iter()
        .filter(|s| s.span.name == name)
        .collect()
}

/// Waits (up to 20 s) for `count` spans named `name`, for tests about what is exported
/// rather than when.
pub async fn wait_for_spans(
    receiver: &OtlpReceiver,
    name: &str,
    count: usize,
) -> Vec<ReceivedSpan> {
    let arrived = receiver
        .wait_until(Duration::from_secs(20), |r| {
            spans_named(r, name).len() >= count
        })
        .await;
    let spans = spans_named(receiver, name);
    assert!(
        arrived,
        "expected {count} span(s) named {name}, got {}: {:?}",
        spans.len(),
        receiver
            .spans()
            .iter()
            .map(|s| s.span.name.clone())
            .collect::<Vec<_>>()
    );
    spans
}

/// The value of a resource attribute of a span, as a string.
pub fn resource_attr(span: &ReceivedSpan, key: &str) -> Option<String> {
    attr(&span.resource.attributes, key)
}

/// The most recent export of metric `name`. Temporality is cumulative, so it carries the
/// running totals of the execution environment that sent it.
pub fn latest_metric(receiver: &OtlpReceiver, name: &str) -> Option<Metric> {
    receiver
        .metrics()
        .into_iter()
        .rev()
        .find(|m| m.metric.name == name)
        .map(|m| m.metric)
}

/// A counter's value for the data point whose attributes are exactly `attributes`.
pub fn counter_value(metric: &Metric, attributes: &[(&str, &str)]) -> Option<i64> {
    let Some(metric::Data::Sum(sum)) = &metric.data else {
        panic!("{} is not a sum: {:?}", metric.name, metric.data);
    };
    assert!(sum.is_monotonic, "{} is a counter", metric.name);
    sum.data_points
        .iter()
        .find(|p| same_attributes(&p.attributes, attributes))
        .map(|p| match p.value {
            Some(number_data_point::Value::AsInt(v)) => v,
            Some(number_data_point::Value::AsDouble(v)) => v as i64,
            None => panic!("a data point of {} without a value", metric.name),
        })
}

/// Whether an OTLP attribute list is exactly `expected` (as strings).
pub fn same_attributes(
    actual: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    expected: &[(&str, &str)],
) -> bool {
    actual.len() == expected.len()
        && expected
            .iter()
            .all(|(key, value)| attr(actual, key).as_deref() == Some(*value))
}
