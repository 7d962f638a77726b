//! `lab up` as a user runs it: the real binary, with `--bin-dir` pointing at stand-in
//! `collector` scripts in a temporary checkout.

use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LAB: &str = env!("CARGO_BIN_EXE_lab");
/// The sidecar collector's ports in the lab's table; the tests start only that process.
const SIDECAR_PORTS: [u16; 4] = [4327, 4328, 8886, 13135];

/// A checkout with the sidecar's config, and a binaries directory holding `collector`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(collector_script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let configs = dir.path().join("crates/collector/configs/local");
        std::fs::create_dir_all(&configs).unwrap();
        std::fs::write(configs.join("sidecar.yaml"), "# stand-in\n").unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let collector = bin.join("collector");
        std::fs::write(&collector, format!("#!/bin/sh\n{collector_script}\n")).unwrap();
        std::fs::set_permissions(&collector, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn lab_up(&self) -> Command {
        let mut command = Command::new(LAB);
        command
            .args(["up", "--only", "collector-sidecar", "--repo"])
            .arg(self.path())
            .arg("--bin-dir")
            .arg(self.path().join("bin"))
            .arg("--state-dir")
            .arg(self.path().join("state"))
            .env("NO_COLOR", "1");
        command
    }

    fn log_file(&self) -> PathBuf {
        self.path().join("state/logs/collector-sidecar.log")
    }
}

/// The tests that use the sidecar's ports take turns.
static SIDECAR_PORTS_IN_USE: Mutex<()> = Mutex::new(());

fn take_sidecar_ports() -> std::sync::MutexGuard<'static, ()> {
    SIDECAR_PORTS_IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fails the test unless the sidecar's ports are free: a lab running on this machine holds
/// them, and then the tests that must start it cannot run (they fail rather than pass
/// having checked nothing).
fn require_sidecar_ports_free() {
    let free = SIDECAR_PORTS
        .iter()
        .all(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert!(
        free,
        "ports {SIDECAR_PORTS:?} are in use, probably by a running lab: stop it (Ctrl-C in its \
         terminal) and run the test again"
    );
}

/// Collects a child's stdout as it comes.
fn capture(child: &mut Child) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn wait_for(text: &Mutex<String>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in:\n{}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn refuses_to_start_when_a_port_is_taken_and_starts_nothing() {
    let _turn = take_sidecar_ports();
    let sandbox = Sandbox::new("touch \"$0.started\"; exec sleep 30");
    // Held for the whole test. If something else already holds it, the refusal is the same.
    let _holder = TcpListener::bind("127.0.0.1:13135");

    let output = sandbox.lab_up().output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "lab up must fail:\n{stderr}");
    assert!(
        stderr.contains(
            "port 13135 (collector-sidecar) is already in use — is another lab running? \
             find it with `ss -ltnp 'sport = :13135'`"
        ),
        "{stderr}"
    );
    assert!(
        !sandbox.path().join("bin/collector.started").exists(),
        "nothing may start when a port is taken"
    );
}

#[test]
fn refuses_to_start_outside_a_checkout() {
    let elsewhere = tempfile::tempdir().unwrap();

    let output = Command::new(LAB)
        .arg("up")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no otel-lab checkout found") && stderr.contains("--repo"),
        "{stderr}"
    );
}

#[test]
fn crash_at_startup_names_the_process_shows_its_last_lines_and_fails() {
    let _turn = take_sidecar_ports();
    require_sidecar_ports_free();
    let sandbox = Sandbox::new(
        "echo \"stand-in collector $*\"\n\
         echo 'Error: cannot read the config: missing key service' >&2\n\
         exit 1",
    );

    let output = sandbox.lab_up().output().unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("collector-sidecar exited during startup (exit code 1)"),
        "{stdout}"
    );
    let config = sandbox
        .path()
        .join("crates/collector/configs/local/sidecar.yaml");
    assert!(
        stdout.contains(&format!(
            "collector-sidecar │ stand-in collector --config {}",
            config.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("collector-sidecar │ Error: cannot read the config: missing key service"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(sandbox.log_file()).unwrap();
    assert!(log.contains("missing key service"), "{log}");
}

#[test]
fn sigterm_stops_a_healthy_lab_and_exits_zero() {
    let _turn = take_sidecar_ports();
    require_sidecar_ports_free();
    // A stand-in whose health URL (http://127.0.0.1:13135/) answers 200.
    let sandbox =
        Sandbox::new("exec python3 -u -m http.server 13135 --bind 127.0.0.1 --directory \"$PWD\"");
    let mut lab = sandbox.lab_up().stdout(Stdio::piped()).spawn().unwrap();
    let stdout = capture(&mut lab);

    wait_for(&stdout, "The lab is up");
    let text = stdout.lock().unwrap().clone();
    assert!(
        text.contains(
            "collector-sidecar  http://127.0.0.1:8886/metrics  ECS sidecar collector's own metrics"
        ),
        "{text}"
    );
    // The health checks reached the stand-in; its access log came through, prefixed.
    assert!(
        text.contains("collector-sidecar │ 127.0.0.1 - - ["),
        "{text}"
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(lab.id() as libc::pid_t, libc::SIGTERM) };
    let status = lab.wait().unwrap();

    wait_for(&stdout, "lab stopped");
    let text = stdout.lock().unwrap().clone();
    assert!(status.success(), "{status}:\n{text}");
    assert!(
        text.contains("collector-sidecar stopped (killed by SIGTERM"),
        "{text}"
    );
    assert!(
        TcpListener::bind("127.0.0.1:13135").is_ok(),
        "the stand-in must be gone"
    );
}

#[test]
fn up_help_documents_every_process_and_flag() {
    let output = Command::new(LAB).args(["up", "--help"]).output().unwrap();

    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for name in lab::processes::names() {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
    for flag in ["--repo", "--state-dir", "--bin-dir", "--only"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
