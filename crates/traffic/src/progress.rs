//! Live progress on stderr: an indicatif bar on a terminal, a plain line every few seconds
//! otherwise (CI logs, `make traffic | tee`).

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters the requests update and the progress display reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub client_errors: AtomicU64,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shows progress until dropped or [`Progress::finish`]ed.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing progress towards `requests` or `duration` (whichever is known; the
    /// count when both are).
    pub fn start(
        counters: Arc<Counters>,
        requests: Option<u64>,
        duration: Option<Duration>,
    ) -> Self {
        let started = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let (length, template) = match (requests, duration) {
                (Some(n), _) => (
                    n,
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} requests  {msg}",
                ),
                (None, Some(d)) => (
                    d.as_secs().max(1),
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} s  {msg}",
                ),
                (None, None) => (0, "{spinner} [{elapsed_precise}] {msg}"),
            };
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("the progress templates are valid")
                    .progress_chars("=> "),
            );
            bar
        });
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut last_plain = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let sent = counters.sent.load(Ordering::Relaxed);
                let done = counters.done.load(Ordering::Relaxed);
                let errors = counters.errors.load(Ordering::Relaxed);
                let client_errors = counters.client_errors.load(Ordering::Relaxed);
                let elapsed = started.elapsed();
                let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
                let message =
                    format!("done {done}, 4xx {client_errors}, errors {errors}, {rate:.1} req/s");
                match &shown {
                    Some(bar) => {
                        bar.set_position(if requests.is_some() {
                            sent
                        } else {
                            elapsed.as_secs()
                        });
                        bar.set_message(message);
                    }
                    None if last_plain.elapsed() >= PLAIN_EVERY => {
                        last_plain = Instant::now();
                        eprintln!(
                            "traffic: {:>5.1}s  sent {sent}, {message}",
                            elapsed.as_secs_f64()
                        );
                    }
                    None => {}
                }
            }
        });
        Self { task, bar }
    }

    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
