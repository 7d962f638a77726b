//! The `batch` processor (the Go collector's batchprocessor): gathers items until
//! `send_batch_size` or `timeout`, then sends them on as one batch of at most
//! `send_batch_max_size` items.
//!
//! By default, as in the Go processor, data is acknowledged as soon as it is in this
//! processor's memory. With `wait_for_result: true` a caller's `consume` returns only once
//! the batch holding its items has been handed downstream, with downstream's answer: a
//! client is never told "accepted" for data that only sits in memory, so together with a
//! persistent sending queue a crash loses nothing that was acknowledged, and a full exporter
//! queue reaches the client as a retryable refusal instead of a silent drop. The cost is
//! latency: an acknowledgement can wait up to `timeout`.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::config::GoDuration;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ProcessorFactory};
use crate::telemetry::{Counter, Histogram};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::{Mutex, oneshot, watch};

pub const FACTORY: ProcessorFactory = ProcessorFactory {
    kind: "batch",
    description: "Groups telemetry into batches by size or time before it is sent on",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<BatchConfig>,
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
    /// Acknowledge only after the batch holding the data was handed on (see above).
    /// Default false.
    pub wait_for_result: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            timeout: GoDuration::millis(200),
            wait_for_result: false,
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
    decoded: &Decoded,
    ctx: BuildContext,
    signal: Signal,
    next: SharedConsumer,
) -> anyhow::Result<SharedConsumer> {
    let cfg: BatchConfig = registry::typed::<BatchConfig>(decoded).clone();
    Ok(start(cfg, &ctx, signal, next))
}

/// A running batch processor handing its batches to `next` (its timer task runs until
/// `shutdown`).
pub fn start(
    cfg: BatchConfig,
    ctx: &BuildContext,
    signal: Signal,
    next: SharedConsumer,
) -> SharedConsumer {
    let id = ctx.id.to_string();
    let l = [("processor", id.as_str())];
    let p = Arc::new(BatchProcessor {
        signal,
        pending: Mutex::new(Pending::new(signal)),
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
        closed: std::sync::atomic::AtomicBool::new(false),
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
                    let taken = timer.pending.lock().await.take(signal);
                    if taken.items > 0 {
                        timer.timeout_trigger.add(1);
                        timer.send(taken).await;
                    }
                }
                _ = stop.changed() => break,
            }
        }
    });
    p
}

struct BatchProcessor {
    id: String,
    cfg: BatchConfig,
    signal: Signal,
    pending: Mutex<Pending>,
    /// Set at shutdown: from then on data passes straight through.
    closed: std::sync::atomic::AtomicBool,
    next: SharedConsumer,
    send_size: Histogram,
    size_trigger: Counter,
    timeout_trigger: Counter,
    stop: watch::Sender<bool>,
}

type Waiter = oneshot::Sender<Result<(), ConsumeError>>;

/// Items waiting to be sent, and the callers waiting for them to be.
struct Pending {
    batch: Batch,
    /// `batch.item_count()`, kept as items arrive: counting the whole pending batch on
    /// every arrival made filling a batch quadratic in the number of requests it holds.
    items: usize,
    waiters: Vec<Waiter>,
}

impl Pending {
    fn new(signal: Signal) -> Pending {
        Pending {
            batch: Batch::empty(signal),
            items: 0,
            waiters: Vec::new(),
        }
    }
    fn take(&mut self, signal: Signal) -> Pending {
        std::mem::replace(self, Pending::new(signal))
    }
}

impl BatchProcessor {
    /// Sends in pieces of at most send_batch_max_size and tells every waiting caller how it
    /// went (the first failure, if any piece failed).
    async fn send(&self, taken: Pending) {
        let Pending { batch, waiters, .. } = taken;
        let mut result = Ok(());
        for piece in batch.split_into(self.cfg.send_batch_max_size) {
            let items = piece.item_count();
            if items == 0 {
                continue;
            }
            self.send_size.record(items as f64);
            if let Err(e) = self.next.consume(piece).await {
                if self.cfg.wait_for_result {
                    tracing::warn!(processor = %self.id, error = %e, "batch refused downstream; its senders are told to retry");
                } else {
                    // Its senders were acknowledged when it was queued here: nobody can retry it.
                    tracing::error!(processor = %self.id, error = %e, items, "batch refused downstream after its senders were acknowledged: dropped (wait_for_result: true passes refusals back to them)");
                }
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

#[async_trait]
impl Consumer for BatchProcessor {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return self.next.consume(batch).await;
        }
        let (tx, rx) = oneshot::channel();
        let wait = self.cfg.wait_for_result;
        let full = {
            let items = batch.item_count();
            let mut pending = self.pending.lock().await;
            pending.batch.append(batch);
            pending.items += items;
            if wait {
                pending.waiters.push(tx);
            }
            (pending.items >= self.cfg.send_batch_size).then(|| pending.take(self.signal))
        };
        if let Some(taken) = full {
            self.size_trigger.add(1);
            self.send(taken).await;
        }
        if !wait {
            return Ok(());
        }
        rx.await.unwrap_or_else(|_| {
            Err(ConsumeError::retryable(
                "the batch processor stopped before sending",
            ))
        })
    }

    async fn shutdown(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop.send(true);
        let rest = self.pending.lock().await.take(self.signal);
        if rest.items > 0 || !rest.waiters.is_empty() {
            self.send(rest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Host;
    use crate::config::ComponentId;
    use crate::telemetry::SelfTelemetry;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[derive(Default)]
    struct Keep(std::sync::Mutex<Vec<Batch>>);

    #[async_trait]
    impl Consumer for Keep {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    fn spans(n: usize) -> Batch {
        Batch::Traces(vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }])
    }

    fn sizes(keep: &Keep) -> Vec<usize> {
        keep.0
            .lock()
            .unwrap()
            .iter()
            .map(Batch::item_count)
            .collect()
    }

    #[tokio::test]
    async fn sends_at_send_batch_size_in_pieces_of_the_max_and_the_rest_on_time() {
        let keep = Arc::new(Keep::default());
        let processor = start(
            BatchConfig {
                send_batch_size: 10,
                send_batch_max_size: 4,
                timeout: GoDuration::millis(300),
                wait_for_result: false,
            },
            &BuildContext {
                id: ComponentId::parse("batch").unwrap(),
                telemetry: Arc::new(SelfTelemetry::default()),
                host: Arc::new(Host::default()),
            },
            Signal::Traces,
            keep.clone(),
        );
        for _ in 0..2 {
            processor.consume(spans(4)).await.unwrap();
        }
        assert_eq!(sizes(&keep), Vec::<usize>::new(), "8 < send_batch_size");
        processor.consume(spans(4)).await.unwrap();
        assert_eq!(sizes(&keep), [4, 4, 4]);
        // The count starts again from zero after a send.
        processor.consume(spans(3)).await.unwrap();
        assert_eq!(sizes(&keep), [4, 4, 4]);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        assert_eq!(sizes(&keep), [4, 4, 4, 3]);
        processor.shutdown().await;
    }
}
