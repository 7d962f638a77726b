//! `lab up`'s life cycle over a list of [`Launch`]es: start each in order and wait until it
//! is healthy; print what is where; keep watching; on an interrupt stop everything in reverse
//! order. A process that fails during startup stops the lab; one that dies later is reported
//! and the rest keep running.

use std::cell::RefCell;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::time::Instant;

use crate::console::Console;
use crate::supervisor::{Launch, Stopped, Supervised, describe};

/// Timings of [`run`]; the defaults are what `lab up` uses.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// For all processes together to become healthy.
    pub startup_timeout: Duration,
    /// Between two health checks of a starting process.
    pub poll_interval: Duration,
    /// Between SIGTERM and SIGKILL for each process: long enough for a service to flush its
    /// last spans and for the collectors after it to pass them on.
    pub stop_grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            startup_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(200),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// How a lab run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything came up, then an interrupt stopped it.
    Stopped,
    /// An interrupt came before everything was up.
    Interrupted,
    /// `process` exited or was not healthy in time; the others were stopped.
    StartupFailed { process: String, reason: String },
    /// Every process exited on its own while the lab was running.
    AllExited,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Stopped | Outcome::Interrupted)
    }
}

enum Startup {
    Healthy,
    Exited(usize),
    TimedOut,
    Interrupted,
}

/// Runs the lab. Each message on `interrupts` is a Ctrl-C (or SIGTERM): the first stops the
/// lab gracefully, a second during that stop kills what is left. `footer` is printed under
/// the table of links once everything is healthy.
pub async fn run(
    launches: &[Launch],
    console: &Console,
    options: &RunOptions,
    interrupts: &mut UnboundedReceiver<()>,
    footer: &str,
) -> Outcome {
    let (exit_tx, mut exits) = mpsc::unbounded_channel();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a plain-HTTP client without TLS or proxies always builds");
    let deadline = Instant::now() + options.startup_timeout;
    let mut running: Vec<Supervised> = Vec::with_capacity(launches.len());

    for (index, launch) in launches.iter().enumerate() {
        console.say(&format!(
            "starting {}: {}",
            launch.name,
            launch.command_line()
        ));
        let process = match Supervised::spawn(launch, index, console, exit_tx.clone()) {
            Ok(process) => process,
            Err(error) => {
                console.shout(&error.to_string());
                stop_all(&running, console, options, interrupts).await;
                return Outcome::StartupFailed {
                    process: launch.name.clone(),
                    reason: error.to_string(),
                };
            }
        };
        running.push(process);
        let Some(url) = &launch.health else {
            continue;
        };
        let started = Instant::now();
        let last_answer = RefCell::new(String::from("no answer yet"));
        let startup = tokio::select! {
            () = interrupted(interrupts) => Startup::Interrupted,
            Some(exited) = exits.recv() => Startup::Exited(exited),
            () = tokio::time::sleep_until(deadline) => Startup::TimedOut,
            () = until_healthy(&client, url, options.poll_interval, &last_answer) => Startup::Healthy,
        };
        let (which, reason) = match startup {
            Startup::Healthy => {
                console.say(&format!(
                    "{} is healthy ({:.1}s)",
                    launch.name,
                    started.elapsed().as_secs_f64()
                ));
                continue;
            }
            Startup::Interrupted => {
                console.say("interrupted: stopping what has started");
                stop_all(&running, console, options, interrupts).await;
                return Outcome::Interrupted;
            }
            Startup::Exited(which) => {
                let process = &running[which];
                let status = process.exit_status().map_or_else(String::new, describe);
                (which, format!("exited during startup ({status})"))
            }
            Startup::TimedOut => (
                index,
                format!(
                    "is not healthy after {}s: GET {url}: {}",
                    options.startup_timeout.as_secs(),
                    last_answer.borrow()
                ),
            ),
        };
        let process = &running[which];
        console.shout(&format!("{} {reason}", process.name()));
        show_last_lines(console, process);
        stop_all(&running, console, options, interrupts).await;
        console.shout(&format!("lab up failed: {} {reason}", process.name()));
        return Outcome::StartupFailed {
            process: process.name().to_owned(),
            reason,
        };
    }

    console.plain(&summary(launches, console.colour()));
    if !footer.is_empty() {
        console.plain(&format!("{footer}\n"));
    }

    let mut alive = running.len();
    while alive > 0 {
        tokio::select! {
            () = interrupted(interrupts) => {
                console.say("stopping the lab (Ctrl-C again to kill everything at once)");
                stop_all(&running, console, options, interrupts).await;
                console.say("lab stopped");
                return Outcome::Stopped;
            }
            Some(which) = exits.recv() => {
                alive -= 1;
                let process = &running[which];
                let status = process.exit_status().map_or_else(String::new, describe);
                console.shout(&format!(
                    "{} exited ({status}) while the lab was running; the others keep running \
                     (restart the lab to bring it back)",
                    process.name()
                ));
                show_last_lines(console, process);
            }
        }
    }
    console.shout("every process of the lab has exited");
    Outcome::AllExited
}

/// Returns at the next interrupt; never, once no more can come.
async fn interrupted(interrupts: &mut UnboundedReceiver<()>) {
    if interrupts.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}

/// Polls `url` until it answers 2xx, keeping in `last_answer` what it said last.
async fn until_healthy(
    client: &reqwest::Client,
    url: &str,
    poll_interval: Duration,
    last_answer: &RefCell<String>,
) {
    loop {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => *last_answer.borrow_mut() = format!("answered {}", response.status()),
            Err(error) => *last_answer.borrow_mut() = innermost(&error),
        }
        tokio::time::sleep(poll_interval).await;
    }
}

/// The root cause of an error ("Connection refused (os error 111)"), which is what a person
/// needs, rather than the outermost "error sending request".
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Stops the processes in reverse start order, so that each one's telemetry still finds the
/// collectors it goes through.
async fn stop_all(
    running: &[Supervised],
    console: &Console,
    options: &RunOptions,
    interrupts: &mut UnboundedReceiver<()>,
) {
    for process in running.iter().rev() {
        if process.exit_status().is_some() {
            continue;
        }
        tokio::select! {
            stopped = process.stop(options.stop_grace) => match stopped {
                Stopped::AlreadyExited(_) => {}
                Stopped::Exited { status, after } => console.say(&format!(
                    "{} stopped ({}, {:.1}s)",
                    process.name(),
                    describe(status),
                    after.as_secs_f64()
                )),
                Stopped::Killed(_) => console.shout(&format!(
                    "{} did not stop within {}s of SIGTERM: killed",
                    process.name(),
                    options.stop_grace.as_secs()
                )),
            },
            () = interrupted(interrupts) => {
                console.shout("interrupted again: killing everything now");
                for process in running.iter().rev() {
                    if process.exit_status().is_none() {
                        process.kill().await;
                    }
                }
                return;
            }
        }
    }
}

fn show_last_lines(console: &Console, process: &Supervised) {
    let lines = process.last_lines();
    let log = process
        .log_file()
        .map(|path| format!(" (all of it: {})", path.display()))
        .unwrap_or_default();
    if lines.is_empty() {
        console.say(&format!("{} printed nothing{log}", process.name()));
        return;
    }
    console.say(&format!(
        "last {} lines of {}{log}:",
        lines.len(),
        process.name()
    ));
    for line in lines {
        console.line(process.prefix(), &line);
    }
}

/// The table of what is where, one row per link.
pub fn summary(launches: &[Launch], colour: bool) -> String {
    let header = ("process", "URL", "what it is");
    let mut rows: Vec<(&str, &str, &str)> = Vec::new();
    for launch in launches {
        for (i, (url, what)) in launch.links.iter().enumerate() {
            let name = if i == 0 { launch.name.as_str() } else { "" };
            rows.push((name, url, what));
        }
    }
    let name_width = rows.iter().map(|r| r.0.len()).chain([header.0.len()]).max();
    let url_width = rows.iter().map(|r| r.1.len()).chain([header.1.len()]).max();
    let (name_width, url_width) = (name_width.unwrap_or(0), url_width.unwrap_or(0));
    let line = |(name, url, what): (&str, &str, &str)| {
        format!("  {name:<name_width$}  {url:<url_width$}  {what}")
    };
    let mut text = String::from("\nThe lab is up:\n\n");
    let heading = line(header);
    if colour {
        text.push_str(&format!("\x1b[1m{heading}\x1b[0m\n"));
    } else {
        text.push_str(&format!("{heading}\n"));
    }
    for row in rows {
        text.push_str(&line(row));
        text.push('\n');
    }
    text.push('\n');
    text
}
