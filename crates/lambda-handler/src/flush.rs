//! The per-invocation flush, bounded in time.
//!
//! Lambda may freeze an execution environment as soon as the function has answered, so
//! whatever the batch processors still hold must be exported before the answer goes back.
//! But the flush must never cost the invocation itself: the SDK's `force_flush` waits up to
//! 5 s per signal (spans, logs, metrics one after the other), which against a collector that
//! accepts connections and never answers is 15 s, past the function's timeout — the fraud
//! check would fail because telemetry was slow. So the flush gets a budget (at most
//! [`FLUSH_LIMIT`], and never past the invocation's deadline); past it the invocation answers
//! anyway and the flush finishes, or fails, on its own thread. While one flush is still
//! running a new one is not started: it would only queue behind the first in the same
//! exporters, and each would hold a blocking thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Exports what the invocation recorded. It blocks, so it runs on a blocking thread.
pub type FlushFn = Arc<dyn Fn() + Send + Sync>;

/// The longest an invocation waits for its telemetry. A healthy collector takes
/// milliseconds; two seconds absorbs a slow one without making callers (order-service
/// gives the fraud check 5 s) give up on the business answer.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// Kept free before the invocation's deadline for the runtime to post the response.
pub const RESPONSE_RESERVE: Duration = Duration::from_millis(250);

/// How one flush went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Everything recorded so far was handed to the exporters and they returned.
    Flushed,
    /// The budget ran out; the flush goes on in the background.
    OutOfTime,
    /// The previous flush is still running; this invocation's data waits for the next one.
    StillBusy,
}

/// Runs the flush function with a budget, one flush at a time. Cheap to clone.
#[derive(Clone)]
pub struct Flusher {
    flush: FlushFn,
    busy: Arc<AtomicBool>,
}

/// Clears the busy flag however the flush ends, a panic included.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Flusher {
    pub fn new(flush: FlushFn) -> Self {
        Self {
            flush,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The budget for an invocation whose deadline is `deadline`: [`FLUSH_LIMIT`], or less
    /// when the deadline (minus [`RESPONSE_RESERVE`]) comes sooner.
    /// The end-of-invocation flush of `function`'s invocation `request_id`, within the budget
    /// its `deadline` leaves; an out-of-time or overlapping flush is said on stderr (the
    /// function's log), not made the invocation's failure.
    pub async fn flush_invocation(
        &self,
        function: &str,
        request_id: &str,
        deadline: std::time::SystemTime,
    ) {
        match self.flush_within(Self::budget(deadline)).await {
            FlushOutcome::Flushed => {}
            FlushOutcome::OutOfTime => eprintln!(
                "{function}: the telemetry flush of invocation {request_id} is out of time; answering without waiting for it"
            ),
            FlushOutcome::StillBusy => eprintln!(
                "{function}: the previous telemetry flush is still running; invocation {request_id} is exported with a later one"
            ),
        }
    }

    pub fn budget(deadline: SystemTime) -> Duration {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(RESPONSE_RESERVE);
        remaining.min(FLUSH_LIMIT)
    }

    /// Flushes, waiting at most `budget`.
    pub async fn flush_within(&self, budget: Duration) -> FlushOutcome {
        if self.busy.swap(true, Ordering::AcqRel) {
            return FlushOutcome::StillBusy;
        }
        let busy = Busy(self.busy.clone());
        let flush = self.flush.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _busy = busy;
            flush();
        });
        match tokio::time::timeout(budget, task).await {
            Ok(Ok(())) => FlushOutcome::Flushed,
            Ok(Err(e)) => {
                // Said on stderr, not through `tracing`: that would feed the failing exporter.
                eprintln!("fraud-check: the telemetry flush failed: {e}");
                FlushOutcome::Flushed
            }
            Err(_) => FlushOutcome::OutOfTime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_quick_flush_is_waited_for() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let flusher = Flusher::new(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(
            flusher.flush_within(Duration::from_secs(5)).await,
            FlushOutcome::Flushed
        );
        assert_eq!(
            flusher.flush_within(Duration::from_secs(5)).await,
            FlushOutcome::Flushed
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hung_flush_gives_up_at_the_budget_and_is_not_stacked() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let flusher = Flusher::new(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            // Hangs like an export to a collector that never answers, until released.
            let _ = released.lock().unwrap().recv();
        }));

        let started = std::time::Instant::now();
        let outcome = flusher.flush_within(Duration::from_millis(200)).await;
        assert_eq!(outcome, FlushOutcome::OutOfTime);
        assert!(started.elapsed() < Duration::from_secs(2), "{started:?}");
        assert_eq!(
            flusher.flush_within(Duration::from_millis(200)).await,
            FlushOutcome::StillBusy
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "no second flush was started"
        );

        release.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while flusher.busy.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the flush never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        release.send(()).unwrap();
        assert_eq!(
            flusher.flush_within(Duration::from_secs(5)).await,
            FlushOutcome::Flushed
        );
    }

    #[test]
    fn the_budget_stops_short_of_the_deadline() {
        let soon = SystemTime::now() + Duration::from_millis(1250);
        let budget = Flusher::budget(soon);
        assert!(budget <= Duration::from_secs(1), "{budget:?}");
        assert!(budget > Duration::from_millis(800), "{budget:?}");
        assert_eq!(
            Flusher::budget(SystemTime::now() + Duration::from_secs(60)),
            FLUSH_LIMIT
        );
        assert_eq!(
            Flusher::budget(SystemTime::now() - Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
