//! The `memory_limiter` processor (the Go collector's memorylimiterprocessor): while the
//! process's resident memory is above the soft limit (`limit_mib − spike_limit_mib`), data is
//! refused with a retryable error, so clients back off and retry instead of the collector
//! running out of memory. Put it first in a pipeline.
//!
//! Resident memory is measured on the data path whenever the last sample is more than 10 ms
//! old, not only every `check_interval`: under a flood a second-old sample lets hundreds of
//! MiB in. Every `check_interval` above the soft limit, free allocator memory is handed back
//! to the system (what a forced GC is to the Go limiter), so the limiter lets data in again
//! once queued data has been delivered.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::GoDuration;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "memory_limiter",
    description: "Refuses data with a retryable error while the collector's memory is above a limit",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<MemoryLimiterConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// How often memory is measured. Default 1s.
    pub check_interval: GoDuration,
    /// Hard limit in MiB of resident memory. One of limit_mib or limit_percentage is required.
    pub limit_mib: u64,
    /// Headroom below the hard limit; refusing starts at limit_mib − spike_limit_mib.
    /// Default 20% of limit_mib.
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of the machine's total memory (used when limit_mib is 0).
    pub limit_percentage: u64,
    /// Headroom as a percentage of total memory. Default 20% of the limit.
    pub spike_limit_percentage: u64,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        MemoryLimiterConfig {
            check_interval: GoDuration::secs(1),
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
        }
    }
}

impl ComponentConfig for MemoryLimiterConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.check_interval.0.is_zero() {
            v.push(("check_interval", "must be greater than 0".into()));
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            v.push((
                "",
                "set limit_mib (or limit_percentage): the memory limit".into(),
            ));
        }
        if self.limit_mib > 0 && self.spike_limit_mib >= self.limit_mib {
            v.push((
                "spike_limit_mib",
                format!("must be below limit_mib ({})", self.limit_mib),
            ));
        }
        if self.limit_percentage > 100 {
            v.push(("limit_percentage", "must be between 1 and 100".into()));
        }
        v
    }
}

impl MemoryLimiterConfig {
    /// (hard, soft) limits in bytes.
    fn limits(&self) -> (u64, u64) {
        const MIB: u64 = 1024 * 1024;
        if self.limit_mib > 0 {
            let spike = if self.spike_limit_mib > 0 {
                self.spike_limit_mib
            } else {
                self.limit_mib / 5
            };
            (self.limit_mib * MIB, (self.limit_mib - spike) * MIB)
        } else {
            let total = total_memory().unwrap_or(1 << 30);
            let hard = total / 100 * self.limit_percentage;
            let spike_pct = if self.spike_limit_percentage > 0 {
                self.spike_limit_percentage
            } else {
                self.limit_percentage / 5
            };
            (hard, hard.saturating_sub(total / 100 * spike_pct))
        }
    }
}

/// What the process may use: the machine's memory, or its cgroup's limit when lower (in a
/// container, limit_percentage is of the container's memory, as in the Go collector).
fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let machine = kb * 1024;
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|f| std::fs::read_to_string(f).ok()?.trim().parse::<u64>().ok())
    .min();
    Some(cgroup.map_or(machine, |c| c.min(machine)))
}

/// Between two samples data keeps arriving; measuring at most this far apart on the data
/// path keeps the overshoot to what a few milliseconds of input can allocate.
const FRESHNESS: Duration = Duration::from_millis(10);

fn build(
    decoded: &Decoded,
    ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: MemoryLimiterConfig = registry::typed::<MemoryLimiterConfig>(decoded).clone();
    let (hard, soft) = cfg.limits();
    let gauge = Gauge {
        id: ctx.id.to_string(),
        hard,
        soft,
        epoch: Instant::now(),
        freshness: FRESHNESS.min(cfg.check_interval.0),
        sampled_at: AtomicU64::new(0),
        refusing: AtomicBool::new(false),
        rss: AtomicU64::new(0),
    };
    gauge.measure();
    let gauge = Arc::new(gauge);
    let watcher = gauge.clone();
    let interval = cfg.check_interval.0;
    let checker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let before = watcher.measure();
            if before > watcher.soft {
                // The Go limiter forces a garbage collection here. Our equivalent: glibc keeps
                // freed memory in its arenas, so after a spike the process would look full
                // long after the data is gone; give the free pages back and measure again.
                let after = tokio::task::spawn_blocking(return_free_memory)
                    .await
                    .map(|()| watcher.measure())
                    .unwrap_or(before);
                tracing::debug!(processor = %watcher.id, before_mib = before >> 20, after_mib = after >> 20, "returned free memory to the system");
            }
        }
    });
    Ok(Arc::new(MemoryLimiter {
        gauge,
        next,
        checker,
        retry_after: interval,
    }))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_memory() {}

/// The process's resident memory as last measured, and whether it is above the soft limit.
struct Gauge {
    id: String,
    hard: u64,
    soft: u64,
    epoch: Instant,
    freshness: Duration,
    /// Nanoseconds after `epoch` of the last sample.
    sampled_at: AtomicU64,
    refusing: AtomicBool,
    rss: AtomicU64,
}

impl Gauge {
    /// Samples resident memory now; returns it.
    fn measure(&self) -> u64 {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.sampled_at.store(now, Ordering::Relaxed);
        let Some(rss) = crate::telemetry::resident_bytes() else {
            return 0;
        };
        self.rss.store(rss, Ordering::Relaxed);
        let above = rss > self.soft;
        let was = self.refusing.swap(above, Ordering::Relaxed);
        if above && !was {
            tracing::warn!(processor = %self.id, rss_mib = rss >> 20, soft_limit_mib = self.soft >> 20, hard_limit_mib = self.hard >> 20, "memory usage above the soft limit: refusing data until it drops");
        } else if !above && was {
            tracing::info!(processor = %self.id, rss_mib = rss >> 20, "memory usage back below the soft limit: accepting data");
        }
        rss
    }

    /// Whether to refuse a batch now, measuring first when the last sample is stale.
    fn refusing(&self) -> bool {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let last = self.sampled_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.freshness.as_nanos() as u64 {
            self.measure();
        }
        self.refusing.load(Ordering::Relaxed)
    }
}

struct MemoryLimiter {
    gauge: Arc<Gauge>,
    next: SharedConsumer,
    checker: tokio::task::JoinHandle<()>,
    retry_after: Duration,
}

#[async_trait]
impl Consumer for MemoryLimiter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if self.gauge.refusing() {
            let rss = self.gauge.rss.load(Ordering::Relaxed);
            return Err(ConsumeError::retryable(format!(
                "data refused due to high memory usage: {} MiB in use, soft limit {} MiB",
                rss >> 20,
                self.gauge.soft >> 20
            ))
            .with_retry_after(self.retry_after));
        }
        self.next.consume(batch).await
    }

    async fn shutdown(&self) {
        self.checker.abort();
    }
}
