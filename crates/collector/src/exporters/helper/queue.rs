//! What every network exporter shares, as the Go collector's exporterhelper: a bounded
//! sending queue drained by `num_consumers` workers, retries with exponential backoff for
//! the failures the OTLP specification calls retryable, and the exporter's own counters.
//! A full queue refuses upstream with a retryable error — never a silent drop.

use super::persistent_queue::{PersistentQueue, QueueError};
use crate::component::{BuildContext, ConsumeError, Consumer};
use crate::config::GoDuration;
use crate::extensions::file_storage::FileStorage;
use crate::otlp_codec::{self, Encoding};
use crate::pdata::{Batch, Signal};
use crate::telemetry::ExporterMetrics;
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};

/// A queued batch with the room it takes in the queue, given back when it leaves.
type Queued = (Batch, OwnedSemaphorePermit);

/// `sending_queue`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Queue batches and send them from background workers. Default true.
    pub enabled: bool,
    /// Workers sending from the queue in parallel. Default 10.
    pub num_consumers: usize,
    /// What queue_size counts: `requests` (batches), `items` (spans, data points, log
    /// records) or `bytes` (OTLP/protobuf size). Default requests.
    pub sizer: Sizer,
    /// How much the queue holds, in the unit of `sizer`. Default 1000.
    pub queue_size: u64,
    /// When full, wait for room instead of refusing. Default false.
    pub block_on_overflow: bool,
    /// Keep the queue on disk in this `file_storage` extension (e.g. `file_storage` or
    /// `file_storage/queues`), so it survives restarts and SIGKILL. Default: in memory.
    pub storage: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: true,
            num_consumers: 10,
            sizer: Sizer::Requests,
            queue_size: 1000,
            block_on_overflow: false,
            storage: None,
        }
    }
}

/// `sending_queue.sizer`
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    Requests,
    Items,
    Bytes,
}

impl Sizer {
    /// A batch's size in this unit, at most u32::MAX (a batch is far smaller).
    pub fn size(self, batch: &Batch) -> u32 {
        let n = match self {
            Sizer::Requests => 1,
            Sizer::Items => batch.item_count(),
            Sizer::Bytes => otlp_codec::encoded_len(batch),
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn unit(self) -> &'static str {
        match self {
            Sizer::Requests => "batches",
            Sizer::Items => "items",
            Sizer::Bytes => "bytes",
        }
    }
}

/// `retry_on_failure`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retry retryable failures. Default true.
    pub enabled: bool,
    /// First wait. Default 5s.
    pub initial_interval: GoDuration,
    /// Longest wait between tries. Default 30s.
    pub max_interval: GoDuration,
    /// Growth of the wait per try. Default 1.5.
    pub multiplier: f64,
    /// Random spread of each wait (0.5 = ±50%). Default 0.5.
    pub randomization_factor: f64,
    /// Give up on a batch after this long (0 = never). Default 300s.
    pub max_elapsed_time: GoDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: GoDuration::secs(5),
            max_interval: GoDuration::secs(30),
            multiplier: 1.5,
            randomization_factor: 0.5,
            max_elapsed_time: GoDuration::secs(300),
        }
    }
}

impl RetryConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.multiplier < 1.0 {
            v.push((
                "retry_on_failure",
                format!("multiplier must be at least 1, found {}", self.multiplier),
            ));
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            v.push((
                "retry_on_failure",
                "randomization_factor must be between 0 and 1".into(),
            ));
        }
        v
    }
}

impl QueueConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.enabled && self.queue_size == 0 {
            v.push(("sending_queue", "queue_size must be at least 1".into()));
        }
        if self.enabled && self.num_consumers == 0 {
            v.push(("sending_queue", "num_consumers must be at least 1".into()));
        }
        if let Some(s) = &self.storage
            && !(s == "file_storage" || s.starts_with("file_storage/"))
        {
            v.push(("sending_queue", format!("storage \"{s}\" must name a file_storage extension (file_storage or file_storage/NAME)")));
        }
        if self.storage.is_some() && !self.enabled {
            v.push(("sending_queue", "storage needs the queue enabled".into()));
        }
        v
    }
}

/// A failed send, classified.
#[derive(Debug)]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
    /// What the server asked for (Retry-After, RetryInfo).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn retryable(message: impl Into<String>) -> Self {
        SendError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The protocol part of an exporter: turn a batch into its request once, then send that
/// request, once per attempt.
#[async_trait]
pub trait Sender: Send + Sync + 'static {
    /// The batch as it goes on the wire (encoded, compressed): built once, so retries of a
    /// batch cost the sending only, and the decoded batch is freed while they wait.
    type Request: Send + Sync;
    /// An error here is permanent: the batch cannot be sent at all.
    fn prepare(&self, batch: &Batch) -> Result<Self::Request, SendError>;
    async fn send(&self, request: &Self::Request) -> Result<(), SendError>;
}

struct Inner<S> {
    id: String,
    host: Arc<crate::component::Host>,
    sender: S,
    retry: RetryConfig,
    metrics: ExporterMetrics,
}

impl<S: Sender> Inner<S> {
    /// Sends with retries; Err means the batch is given up (already logged and counted).
    async fn send_with_retry(
        &self,
        batch: Batch,
        deadline: Option<Instant>,
    ) -> Result<(), SendError> {
        let n = batch.item_count() as u64;
        let request = match self.sender.prepare(&batch) {
            Ok(request) => request,
            Err(e) => {
                self.host.exporter_outcome(&self.id, Some(&e.message));
                self.metrics.send_failed.add(n);
                tracing::error!(exporter = %self.id, items = n, error = %e.message, "dropping data: permanent error");
                return Err(e);
            }
        };
        drop(batch);
        let start = Instant::now();
        let mut wait = self.retry.initial_interval.0;
        loop {
            match self.sender.send(&request).await {
                Ok(()) => {
                    self.host.exporter_outcome(&self.id, None);
                    self.metrics.sent.add(n);
                    return Ok(());
                }
                Err(e) => {
                    self.host.exporter_outcome(&self.id, Some(&e.message));
                    let elapsed = start.elapsed();
                    let out_of_time = !self.retry.max_elapsed_time.0.is_zero()
                        && elapsed >= self.retry.max_elapsed_time.0;
                    let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
                    if !e.retryable || !self.retry.enabled || out_of_time || past_deadline {
                        self.metrics.send_failed.add(n);
                        let why = if !e.retryable {
                            "permanent error"
                        } else if past_deadline {
                            "shutdown deadline reached"
                        } else {
                            "retries exhausted"
                        };
                        tracing::error!(exporter = %self.id, items = n, error = %e.message, "dropping data: {why}");
                        return Err(e);
                    }
                    let mut sleep = e
                        .retry_after
                        .unwrap_or_else(|| jitter(wait, self.retry.randomization_factor));
                    if let Some(d) = deadline {
                        sleep = sleep.min(d.saturating_duration_since(Instant::now()));
                    }
                    tracing::warn!(exporter = %self.id, items = n, error = %e.message, retry_in = ?sleep, "export failed; will retry");
                    tokio::time::sleep(sleep).await;
                    wait = Duration::from_secs_f64(
                        (wait.as_secs_f64() * self.retry.multiplier)
                            .min(self.retry.max_interval.0.as_secs_f64()),
                    );
                }
            }
        }
    }
}

fn jitter(d: Duration, factor: f64) -> Duration {
    if factor == 0.0 {
        return d;
    }
    let r: f64 = rand::random::<f64>() * 2.0 - 1.0;
    Duration::from_secs_f64((d.as_secs_f64() * (1.0 + r * factor)).max(0.0))
}

/// An exporter: a [`Sender`] behind the queue and retry policy.
pub struct QueuedExporter<S> {
    inner: Arc<Inner<S>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
    /// Free room in the in-memory queue, in units of the sizer.
    room: Arc<Semaphore>,
    disk: Option<Arc<PersistentQueue>>,
    signal: Signal,
    queue: QueueConfig,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// How long shutdown keeps trying to drain the queue.
    drain_deadline: Duration,
}

impl<S: Sender> QueuedExporter<S> {
    /// Builds the exporter; with `sending_queue.storage`, opens (and recovers) its queue on
    /// disk in that file_storage extension, which must be enabled in service::extensions.
    pub fn new(
        ctx: &BuildContext,
        signal: Signal,
        sender: S,
        queue: QueueConfig,
        retry: RetryConfig,
    ) -> anyhow::Result<Arc<Self>> {
        let id = ctx.id.to_string();
        let metrics = ExporterMetrics::new(&ctx.telemetry, &id, signal);
        let inner = Arc::new(Inner {
            id: id.clone(),
            host: ctx.host.clone(),
            sender,
            retry,
            metrics,
        });
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        let mut tx = None;
        let mut disk = None;
        if let Some(storage_id) = &queue.storage {
            let storage = ctx
                .host
                .extension::<FileStorage>(storage_id)
                .ok_or_else(|| anyhow::anyhow!("exporters::{id}::sending_queue::storage: extension \"{storage_id}\" is not enabled; define it and list it in service::extensions"))?;
            let dir = storage.queue_dir(&id, signal);
            let q = Arc::new(
                PersistentQueue::open(&dir, storage.fsync, queue.queue_size, queue.sizer).map_err(
                    |e| {
                        anyhow::anyhow!(
                            "exporters::{id}: cannot open the persistent queue in {}: {e}",
                            dir.display()
                        )
                    },
                )?,
            );
            inner.metrics.queue_capacity.set(queue.queue_size as i64);
            inner.metrics.queue_size.set(q.used() as i64);
            for _ in 0..queue.num_consumers {
                workers.push(tokio::spawn(disk_worker(
                    inner.clone(),
                    q.clone(),
                    signal,
                    stop.subscribe(),
                )));
            }
            disk = Some(q);
        } else if queue.enabled {
            inner.metrics.queue_capacity.set(queue.queue_size as i64);
            let (sender, rx) = mpsc::unbounded_channel::<Queued>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..queue.num_consumers {
                let rx = rx.clone();
                let inner = inner.clone();
                workers.push(tokio::spawn(async move {
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some((batch, room)) = next else { break };
                        // As in the Go collector, queue_size counts what waits, not what is
                        // being sent (at most num_consumers batches).
                        inner.metrics.queue_size.add(-(room.num_permits() as i64));
                        drop(room);
                        let _ = inner.send_with_retry(batch, None).await;
                    }
                }));
            }
            tx = Some(sender);
        }
        let room = Arc::new(Semaphore::new(
            queue.queue_size.min(Semaphore::MAX_PERMITS as u64) as usize,
        ));
        Ok(Arc::new(QueuedExporter {
            inner,
            tx: Mutex::new(tx),
            room,
            disk,
            signal,
            queue,
            workers: Mutex::new(workers),
            stop,
            drain_deadline: Duration::from_secs(30),
        }))
    }
}

/// Sends batches from the disk queue until stopped. A batch is acknowledged on the queue
/// only once sent (or given up as permanent / out of retries); a batch interrupted by
/// shutdown stays on disk and is sent after the restart.
async fn disk_worker<S: Sender>(
    inner: Arc<Inner<S>>,
    q: Arc<PersistentQueue>,
    signal: Signal,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let Some((pos, bytes)) = q.next() else {
            tokio::select! {
                _ = q.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        match otlp_codec::decode(signal, Encoding::Protobuf, &bytes) {
            Ok(batch) => {
                tokio::select! {
                    _ = inner.send_with_retry(batch, None) => q.ack(pos),
                    _ = stop.changed() => return,
                }
            }
            Err(e) => {
                tracing::error!(exporter = %inner.id, error = %e, "undecodable batch in the persistent queue; skipped");
                q.ack(pos);
            }
        }
        inner.metrics.queue_size.set(q.used() as i64);
    }
}

#[async_trait]
impl<S: Sender> Consumer for QueuedExporter<S> {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let n = batch.item_count() as u64;
        if let Some(q) = &self.disk {
            let bytes = otlp_codec::encode(&batch, Encoding::Protobuf);
            let units = match self.queue.sizer {
                Sizer::Bytes => u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                sizer => sizer.size(&batch),
            };
            let written = loop {
                match q.append(&bytes, units) {
                    Err(QueueError::Full { .. }) if self.queue.block_on_overflow => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    other => break other,
                }
            };
            return match written {
                Ok(()) => {
                    self.inner.metrics.queue_size.set(q.used() as i64);
                    Ok(())
                }
                Err(e) => {
                    self.inner.metrics.enqueue_failed.add(n);
                    Err(match e {
                        QueueError::TooLarge { .. } => ConsumeError::permanent(format!(
                            "exporter {}: {e}; lower the batch processor's send_batch_max_size or raise queue_size",
                            self.inner.id
                        )),
                        _ => ConsumeError::retryable(format!(
                            "exporter {}: {e}; retry later",
                            self.inner.id
                        ))
                        .with_retry_after(Duration::from_secs(1)),
                    })
                }
            };
        }
        let tx = self.tx.lock().await.clone();
        let Some(tx) = tx else {
            if self.queue.enabled {
                return Err(ConsumeError::retryable("exporter is shutting down"));
            }
            return self.inner.send_with_retry(batch, None).await.map_err(|e| {
                if e.retryable {
                    ConsumeError::retryable(e.message)
                } else {
                    ConsumeError::permanent(e.message)
                }
            });
        };
        let units = self.queue.sizer.size(&batch);
        let unit = self.queue.sizer.unit();
        if u64::from(units) > self.queue.queue_size {
            self.inner.metrics.enqueue_failed.add(n);
            return Err(ConsumeError::permanent(format!(
                "exporter {}: a batch of {units} {unit} is larger than the whole sending queue \
                 (queue_size {}); lower the batch processor's send_batch_max_size or raise queue_size",
                self.inner.id, self.queue.queue_size
            )));
        }
        let room = if self.queue.block_on_overflow {
            self.room.clone().acquire_many_owned(units).await.ok()
        } else {
            self.room.clone().try_acquire_many_owned(units).ok()
        };
        let Some(room) = room else {
            self.inner.metrics.enqueue_failed.add(n);
            let used = self.queue.queue_size - self.room.available_permits() as u64;
            return Err(ConsumeError::retryable(format!(
                "sending queue of exporter {} is full ({used} of {} {unit}); retry later",
                self.inner.id, self.queue.queue_size
            ))
            .with_retry_after(Duration::from_secs(1)));
        };
        self.inner.metrics.queue_size.add(i64::from(units));
        if tx.send((batch, room)).is_err() {
            self.inner.metrics.queue_size.add(-i64::from(units));
            return Err(ConsumeError::retryable("exporter is shutting down"));
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let workers = std::mem::take(&mut *self.workers.lock().await);
        if let Some(q) = &self.disk {
            // Everything is on disk already: give in-flight sends a moment, then stop; what
            // is left is sent after the next start.
            let all = futures::future::join_all(workers);
            tokio::pin!(all);
            tokio::select! {
                _ = &mut all => {}
                _ = async {
                    let deadline = tokio::time::Instant::now() + self.drain_deadline;
                    while !q.is_empty() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let _ = self.stop.send(true);
                    std::future::pending::<()>().await
                } => {}
            }
            if !q.is_empty() {
                tracing::info!(exporter = %self.inner.id, batches = q.len(), signal = %self.signal, "undelivered batches stay in the persistent queue for the next start");
            }
            return;
        }
        // Closing the channel lets workers finish what is queued, then stop.
        self.tx.lock().await.take();
        let deadline = tokio::time::sleep(self.drain_deadline);
        tokio::pin!(deadline);
        let all = futures::future::join_all(workers);
        tokio::select! {
            _ = all => {}
            _ = &mut deadline => {
                tracing::error!(exporter = %self.inner.id, "queue not drained within {:?}; remaining data is lost", self.drain_deadline);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Host;
    use crate::config::ComponentId;
    use crate::telemetry::SelfTelemetry;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Refuses the first two attempts (retryably), then accepts; counts what it is asked.
    #[derive(Default)]
    struct Flaky {
        prepared: AtomicUsize,
        attempts: AtomicUsize,
    }

    #[async_trait]
    impl Sender for Arc<Flaky> {
        type Request = usize;
        fn prepare(&self, batch: &Batch) -> Result<usize, SendError> {
            self.prepared.fetch_add(1, Ordering::SeqCst);
            Ok(batch.item_count())
        }
        async fn send(&self, _request: &usize) -> Result<(), SendError> {
            if self.attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(SendError::retryable("not yet"));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_batch_is_prepared_once_however_often_it_is_retried() {
        let flaky = Arc::new(Flaky::default());
        let exporter = QueuedExporter::new(
            &BuildContext {
                id: ComponentId::parse("otlp").unwrap(),
                telemetry: Arc::new(SelfTelemetry::default()),
                host: Arc::new(Host::default()),
            },
            Signal::Traces,
            flaky.clone(),
            QueueConfig {
                enabled: false,
                ..Default::default()
            },
            RetryConfig {
                initial_interval: GoDuration::millis(1),
                ..Default::default()
            },
        )
        .unwrap();
        exporter
            .consume(Batch::empty(Signal::Traces))
            .await
            .unwrap();
        assert_eq!(flaky.attempts.load(Ordering::SeqCst), 3);
        assert_eq!(flaky.prepared.load(Ordering::SeqCst), 1);
    }
}
