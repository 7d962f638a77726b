//! What the whole-lab tests share: the checkout's root, a build of every binary, and the lab
//! itself started through the real `lab up` (fixed ports, so one at a time).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// `cargo test --workspace` has built every binary already; `cargo test -p lab` has not.
pub fn build_workspace_binaries() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--workspace", "--bins"])
        .current_dir(repo())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --workspace --bins failed");
}

/// The lab, started by the real `lab up` with a state directory of its own.
pub struct Lab {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub state: tempfile::TempDir,
}

impl Lab {
    /// Starts it and waits for "The lab is up" (two minutes at most).
    pub fn start() -> Lab {
        Self::start_with(&[])
    }

    /// `lab up` with more arguments (`--workshop`, `--gateway-config FILE`).
    pub fn start_with(args: &[&str]) -> Lab {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(["up", "--state-dir"])
            .arg(state.path())
            .args(args)
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lab");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut lab = Lab {
            child,
            lines: rx,
            state,
        };
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match lab.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let up = l.contains("The lab is up");
                    seen.push(l);
                    if up {
                        break;
                    }
                }
                Err(_) => {
                    if let Ok(Some(s)) = lab.child.try_wait() {
                        panic!("lab up exited with {s}:\n{}", seen.join("\n"));
                    }
                    assert!(
                        Instant::now() < deadline,
                        "lab not up after 120s:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
        lab
    }

    /// SIGTERM, as Ctrl-C would, and its exit status (90 s at most).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            while self.lines.try_recv().is_ok() {}
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "lab did not stop within 90s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            sigterm(self.child.id());
            std::thread::sleep(Duration::from_secs(5));
            let _ = self.child.kill();
        }
    }
}

pub fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}
