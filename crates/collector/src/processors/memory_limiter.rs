//! The `memory_limiter` processor (the Go collector's memorylimiterprocessor): measures the
//! process's resident memory every `check_interval` and, above the soft limit
//! (`limit_mib − spike_limit_mib`), refuses data with a retryable error so clients back off
//! and retry instead of the collector running out of memory. Put it first in a pipeline.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::{GoDuration, Node};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, ProcessorFactory};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "memory_limiter",
    description: "Refuses data with a retryable error while the collector's memory is above a limit",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: |n, p, e| {
        registry::check::<MemoryLimiterConfig>(n, p, e);
    },
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

fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn build(
    node: &Node,
    ctx: BuildContext,
    _signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: MemoryLimiterConfig = registry::parse(node, &format!("processors::{}", ctx.id))?;
    let (hard, soft) = cfg.limits();
    let state = Arc::new(State {
        refusing: AtomicBool::new(false),
        rss: AtomicU64::new(0),
    });
    let watcher = state.clone();
    let interval = cfg.check_interval.0;
    let id = ctx.id.to_string();
    let checker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let rss = crate::telemetry::process_stats()
                .map(|(r, _)| r)
                .unwrap_or(0);
            watcher.rss.store(rss, Ordering::Relaxed);
            let was = watcher.refusing.swap(rss > soft, Ordering::Relaxed);
            if rss > soft && !was {
                tracing::warn!(processor = %id, rss_mib = rss >> 20, soft_limit_mib = soft >> 20, hard_limit_mib = hard >> 20, "memory usage above the soft limit: refusing data until it drops");
            } else if rss <= soft && was {
                tracing::info!(processor = %id, rss_mib = rss >> 20, "memory usage back below the soft limit: accepting data");
            }
        }
    });
    Ok(Arc::new(MemoryLimiter {
        state,
        soft,
        next,
        checker,
        retry_after: interval,
    }))
}

struct State {
    refusing: AtomicBool,
    rss: AtomicU64,
}

struct MemoryLimiter {
    state: Arc<State>,
    soft: u64,
    next: SharedConsumer,
    checker: tokio::task::JoinHandle<()>,
    retry_after: std::time::Duration,
}

#[async_trait]
impl Consumer for MemoryLimiter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if self.state.refusing.load(Ordering::Relaxed) {
            let rss = self.state.rss.load(Ordering::Relaxed);
            return Err(ConsumeError::retryable(format!(
                "data refused due to high memory usage: {} MiB in use, soft limit {} MiB",
                rss >> 20,
                self.soft >> 20
            ))
            .with_retry_after(self.retry_after));
        }
        self.next.consume(batch).await
    }

    async fn shutdown(&self) {
        self.checker.abort();
    }
}
