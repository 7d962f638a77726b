//! The `batch` processor (the Go collector's batchprocessor): gathers items until
//! `send_batch_size` or `timeout`, then sends them on as one batch of at most
//! `send_batch_max_size` items.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::{GoDuration, Node};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, ProcessorFactory};
use crate::telemetry::{Counter, Histogram};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "batch",
    description: "Groups telemetry into batches by size or time before it is sent on",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: |n, p, e| {
        registry::check::<BatchConfig>(n, p, e);
    },
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Send once this many items (spans, metric points, log records) are waiting. Default 8192.
    pub send_batch_size: usize,
    /// Upper bound of one sent batch; larger batches are split. 0 = no bound. Default 0.
    pub send_batch_max_size: usize,
    /// Send what is waiting after this long even if the batch is not full. Default 200ms.
    pub timeout: GoDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: GoDuration::millis(200),
        }
    }
}

impl ComponentConfig for BatchConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.send_batch_max_size > 0 && self.send_batch_max_size < self.send_batch_size {
            v.push((
                "send_batch_max_size",
                format!(
                    "must be 0 or at least send_batch_size ({}), found {}",
                    self.send_batch_size, self.send_batch_max_size
                ),
            ));
        }
        v
    }
}

fn build(
    node: &Node,
    ctx: BuildContext,
    signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: BatchConfig = registry::parse(node, &format!("processors::{}", ctx.id))?;
    let id = ctx.id.to_string();
    let l = [("processor", id.as_str())];
    let p = Arc::new(BatchProcessor {
        signal,
        pending: Mutex::new(Batch::empty(signal)),
        send_size: ctx.telemetry.histogram(
            "otelcol_processor_batch_batch_send_size",
            "Number of units in the batch",
            &l,
            &[
                10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 3000.0, 4000.0,
                5000.0, 6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 20000.0, 30000.0, 50000.0,
                100000.0,
            ],
        ),
        size_trigger: ctx.telemetry.counter(
            "otelcol_processor_batch_batch_size_trigger_send_total",
            "Number of times the batch was sent due to a size trigger",
            &l,
        ),
        timeout_trigger: ctx.telemetry.counter(
            "otelcol_processor_batch_timeout_trigger_send_total",
            "Number of times the batch was sent due to a timeout trigger",
            &l,
        ),
        cfg,
        next,
        stop: watch::channel(false).0,
        id,
    });
    let timer = p.clone();
    let mut stop = p.stop.subscribe();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(timer.cfg.timeout.0.max(std::time::Duration::from_millis(1)));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let batch = std::mem::replace(&mut *timer.pending.lock().await, Batch::empty(signal));
                    if !batch.is_empty() {
                        timer.timeout_trigger.add(1);
                        timer.send(batch).await;
                    }
                }
                _ = stop.changed() => break,
            }
        }
    });
    Ok(p)
}

struct BatchProcessor {
    id: String,
    cfg: BatchConfig,
    signal: Signal,
    pending: Mutex<Batch>,
    next: SharedConsumer,
    send_size: Histogram,
    size_trigger: Counter,
    timeout_trigger: Counter,
    stop: watch::Sender<bool>,
}

impl BatchProcessor {
    /// Sends in pieces of at most send_batch_max_size. Errors here have no caller to return
    /// to (the timer sent them), so they are logged; exporters with a queue keep the data.
    async fn send(&self, mut batch: Batch) {
        loop {
            let piece = if self.cfg.send_batch_max_size > 0
                && batch.item_count() > self.cfg.send_batch_max_size
            {
                batch.split_front(self.cfg.send_batch_max_size)
            } else {
                {
                    let signal = batch.signal();
                    std::mem::replace(&mut batch, Batch::empty(signal))
                }
            };
            if piece.is_empty() {
                break;
            }
            self.send_size.record(piece.item_count() as f64);
            if let Err(e) = self.next.consume(piece).await {
                tracing::warn!(processor = %self.id, error = %e, "batch could not be handed on; it is dropped");
            }
        }
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let full = {
            let mut pending = self.pending.lock().await;
            pending.append(batch);
            if pending.item_count() >= self.cfg.send_batch_size {
                Some(std::mem::replace(&mut *pending, Batch::empty(self.signal)))
            } else {
                None
            }
        };
        if let Some(b) = full {
            self.size_trigger.add(1);
            self.send(b).await;
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let rest = {
            let mut pending = self.pending.lock().await;
            std::mem::replace(&mut *pending, Batch::empty(self.signal))
        };
        if !rest.is_empty() {
            self.send(rest).await;
        }
    }
}
