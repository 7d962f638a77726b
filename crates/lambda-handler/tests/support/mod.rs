//! Runs the real `lambda-emulator` binary for the tests and reads what it logs.
#![allow(dead_code)] // each test file uses its own part of the support code

pub mod otlp;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
