//! The lab's life cycle over real child processes: small `sh` scripts that start, print,
//! crash, hang or trap SIGTERM, as the lab's services and collectors do.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lab::console::Console;
use lab::supervisor::{Launch, Stopped, Supervised};
use lab::up::{Outcome, RunOptions, run};
use tokio::sync::mpsc;

/// A console writing into memory, readable while the lab runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn console(&self, names: &[&str]) -> Console {
        Console::new(Box::new(self.clone()), false, names)
    }

    async fn wait_for(&self, needle: &str) {
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while !self.text().contains(needle) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "{needle:?} never appeared in:\n{}",
            self.text()
        );
    }
}

fn script(name: &str, body: &str) -> Launch {
    Launch {
        name: name.to_owned(),
        program: PathBuf::from("sh"),
        args: vec!["-c".to_owned(), body.to_owned()],
        ..Launch::default()
    }
}

/// Runs until SIGTERM, then says so and exits 0, like a service flushing its telemetry.
const STEADY: &str = r#"trap 'echo "got SIGTERM, flushing"; exit 0' TERM
echo "steady: up"
while true; do sleep 0.05; done"#;

/// A URL nothing answers: bind port 0, note the port, let it go.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/healthz")
}

fn quick() -> RunOptions {
    RunOptions {
        startup_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        stop_grace: Duration::from_secs(5),
    }
}

fn line_index(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
}

#[tokio::test]
async fn process_that_exits_at_startup_is_named_with_its_last_lines_and_the_others_are_stopped() {
    let out = Captured::default();
    let console = out.console(&["steady", "payments"]);
    let mut crashing = script(
        "payments",
        // The pause lets `steady` set its trap first, so its SIGTERM is the one it handles.
        "sleep 0.3; echo 'opening payments.db'; echo 'error: database is locked' >&2; exit 1",
    );
    crashing.health = Some(closed_url());
    let launches = [script("steady", STEADY), crashing];
    let (_interrupt, mut interrupts) = mpsc::unbounded_channel();

    let outcome = run(&launches, &console, &quick(), &mut interrupts, "").await;

    assert_eq!(
        outcome,
        Outcome::StartupFailed {
            process: "payments".into(),
            reason: "exited during startup (exit code 1)".into()
        }
    );
    assert!(!outcome.is_success());
    let text = out.text();
    let report = line_index(&text, "payments exited during startup (exit code 1)");
    let tail = line_index(&text, "last 2 lines of payments:");
    assert!(report < tail, "{text}");
    assert!(
        text[tail..].contains("payments │ opening payments.db"),
        "{text}"
    );
    assert!(
        text[tail..].contains("payments │ error: database is locked"),
        "{text}"
    );
    assert!(text.contains("steady │ got SIGTERM, flushing"), "{text}");
    assert!(text.contains("steady stopped (exit code 0"), "{text}");
    assert!(
        text.contains("lab up failed: payments exited during startup"),
        "{text}"
    );
    assert!(
        !text.contains("The lab is up"),
        "no summary after a failed start:\n{text}"
    );
}

#[tokio::test]
async fn process_never_healthy_is_reported_with_what_its_health_check_saw() {
    let out = Captured::default();
    let console = out.console(&["silent"]);
    let url = closed_url();
    let mut silent = script("silent", "echo 'still loading'; exec sleep 30");
    silent.health = Some(url.clone());
    let options = RunOptions {
        startup_timeout: Duration::from_secs(1),
        ..quick()
    };
    let (_interrupt, mut interrupts) = mpsc::unbounded_channel();

    let outcome = run(&[silent], &console, &options, &mut interrupts, "").await;

    let Outcome::StartupFailed { process, reason } = outcome else {
        panic!("expected a startup failure, got {outcome:?}");
    };
    assert_eq!(process, "silent");
    assert!(
        reason.starts_with(&format!("is not healthy after 1s: GET {url}: ")),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    let text = out.text();
    assert!(text.contains("silent │ still loading"), "{text}");
    // `sleep` has no SIGTERM handler: the default action ends it.
    assert!(text.contains("silent stopped (killed by SIGTERM"), "{text}");
}

#[tokio::test]
async fn interrupt_stops_every_process_in_reverse_start_order_and_succeeds() {
    let out = Captured::default();
    let console = out.console(&["collector", "service"]);
    let mut collector = script("collector", STEADY);
    collector.links = vec![("http://127.0.0.1:16686".into(), "trace explorer".into())];
    let launches = [collector, script("service", STEADY)];
    let (interrupt, mut interrupts) = mpsc::unbounded_channel();

    let options = quick();
    let lab = run(
        &launches,
        &console,
        &options,
        &mut interrupts,
        "next: make traffic",
    );
    let operator = async {
        out.wait_for("next: make traffic").await;
        out.wait_for("collector │ steady: up").await;
        out.wait_for("service │ steady: up").await;
        interrupt.send(()).unwrap();
    };
    let (outcome, ()) = tokio::join!(lab, operator);

    assert_eq!(outcome, Outcome::Stopped);
    assert!(outcome.is_success());
    let text = out.text();
    assert!(text.contains("The lab is up"), "{text}");
    assert!(
        text.contains("collector  http://127.0.0.1:16686  trace explorer"),
        "{text}"
    );
    let service_stopped = line_index(&text, "service stopped (exit code 0");
    let collector_stopped = line_index(&text, "collector stopped (exit code 0");
    assert!(
        service_stopped < collector_stopped,
        "the collector must outlive the service:\n{text}"
    );
    assert!(text.contains("service │ got SIGTERM, flushing"), "{text}");
    assert!(text.contains("collector │ got SIGTERM, flushing"), "{text}");
}

#[tokio::test]
async fn process_dying_while_running_is_reported_and_the_others_keep_running() {
    let out = Captured::default();
    let console = out.console(&["steady", "flaky"]);
    let flaky = script(
        "flaky",
        "sleep 0.3; echo \"thread 'main' panicked at src/main.rs:7\" >&2; exit 101",
    );
    let launches = [script("steady", STEADY), flaky];
    let (interrupt, mut interrupts) = mpsc::unbounded_channel();

    let options = quick();
    let lab = run(&launches, &console, &options, &mut interrupts, "");
    let operator = async {
        out.wait_for("steady │ steady: up").await;
        out.wait_for("flaky exited (exit code 101) while the lab was running")
            .await;
        interrupt.send(()).unwrap();
    };
    let (outcome, ()) = tokio::join!(lab, operator);

    assert_eq!(outcome, Outcome::Stopped);
    let text = out.text();
    let death = line_index(&text, "flaky exited (exit code 101)");
    assert!(
        text[death..].contains("flaky │ thread 'main' panicked at src/main.rs:7"),
        "{text}"
    );
    assert!(
        text[death..].contains("steady stopped (exit code 0"),
        "steady must have kept running until the interrupt:\n{text}"
    );
}

#[tokio::test]
async fn second_interrupt_kills_what_is_still_stopping() {
    let out = Captured::default();
    let console = out.console(&["first", "second"]);
    let stubborn = "trap '' TERM; echo ready; while true; do sleep 0.05; done";
    let launches = [script("first", stubborn), script("second", stubborn)];
    let options = RunOptions {
        stop_grace: Duration::from_secs(600),
        ..quick()
    };
    let (interrupt, mut interrupts) = mpsc::unbounded_channel();

    let lab = run(&launches, &console, &options, &mut interrupts, "");
    let operator = async {
        out.wait_for("The lab is up").await;
        // Without a health check a process counts as up once spawned, possibly before `sh`
        // has set its trap; only after "ready" is SIGTERM sure to be ignored.
        out.wait_for("first │ ready").await;
        out.wait_for("second │ ready").await;
        interrupt.send(()).unwrap();
        out.wait_for("stopping the lab").await;
        interrupt.send(()).unwrap();
    };
    let both = async { tokio::join!(lab, operator) };
    let (outcome, ()) = tokio::time::timeout(Duration::from_secs(60), both)
        .await
        .expect("a second interrupt must not wait out the grace period");

    assert_eq!(outcome, Outcome::Stopped);
    assert!(
        out.text()
            .contains("interrupted again: killing everything now"),
        "{}",
        out.text()
    );
}

#[tokio::test]
async fn process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let out = Captured::default();
    let console = out.console(&["stubborn"]);
    let (exits, _) = mpsc::unbounded_channel();
    let stubborn = script(
        "stubborn",
        "trap '' TERM; echo ready; while true; do sleep 0.05; done",
    );
    let process = Supervised::spawn(&stubborn, 0, &console, exits).unwrap();
    out.wait_for("stubborn │ ready").await;

    let stopped = process.stop(Duration::from_millis(300)).await;

    let Stopped::Killed(status) = stopped else {
        panic!("expected SIGKILL, got {stopped:?}");
    };
    assert_eq!(lab::supervisor::describe(status), "killed by SIGKILL");
    assert_eq!(process.exit_status(), Some(status));
}

#[tokio::test]
async fn every_output_line_is_prefixed_shown_and_logged_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("chatty.log");
    let out = Captured::default();
    let console = Console::new(Box::new(out.clone()), true, &["chatty", "a-longer-name"]);
    let mut chatty = script(
        "chatty",
        r#"echo 'to stdout'
printf '\033[32m INFO\033[0m coloured\n' >&2
printf 'bad byte \377 here\n'
printf 'no newline at the end'"#,
    );
    chatty.log_file = Some(log_file.clone());
    let (exits, mut exited) = mpsc::unbounded_channel();

    let process = Supervised::spawn(&chatty, 2, &console, exits).unwrap();
    let status = process.wait().await;

    assert!(status.success());
    assert_eq!(
        exited.recv().await,
        Some(2),
        "the exit names the process's index"
    );
    let text = out.text();
    // Right-aligned to the longest name, coloured (third colour of the palette).
    let prefix = "\x1b[35m       chatty │\x1b[0m ";
    for line in [
        "to stdout",
        "\x1b[32m INFO\x1b[0m coloured",
        "bad byte \u{fffd} here",
        "no newline at the end",
    ] {
        assert!(
            text.contains(&format!("{prefix}{line}\n")),
            "{line:?} not in {text:?}"
        );
    }
    let logged = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        logged.starts_with("# lab: sh -c echo 'to stdout'"),
        "{logged}"
    );
    let mut logged_lines: Vec<&str> = logged
        .lines()
        .filter(|l| !l.starts_with("# lab: "))
        .collect();
    logged_lines.sort_unstable();
    assert_eq!(
        logged_lines,
        [
            " INFO coloured",
            "bad byte \u{fffd} here",
            "no newline at the end",
            "to stdout"
        ]
    );
    assert_eq!(process.last_lines().len(), 4);
}
