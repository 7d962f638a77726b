//! The roles of the Go collector's model, as traits: receivers produce into a [`Consumer`],
//! processors and exporters are consumers, connectors are an exporter in one pipeline and a
//! receiver in another, extensions run beside the pipelines.

use crate::config::{ComponentId, Node};
use crate::pdata::{Batch, Signal};
use crate::telemetry::SelfTelemetry;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a consumer did not take a batch. Receivers turn this into the OTLP status a client
/// understands: retryable → gRPC UNAVAILABLE / HTTP 503 (+ Retry-After), permanent → gRPC
/// INVALID_ARGUMENT / HTTP 400.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeError {
    pub retryable: bool,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ConsumeError {
    pub fn retryable(message: impl Into<String>) -> Self {
        ConsumeError {
            retryable: true,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        ConsumeError {
            retryable: false,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after = Some(d);
        self
    }
}

impl fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConsumeError {}

/// Anything a batch can be handed to: a processor, an exporter, a connector, a fan-out.
#[async_trait]
pub trait Consumer: Send + Sync {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError>;
    /// Whether this consumer changes, or keeps, the batches it is given (the Go collector's
    /// `MutatesData` capability). One that only reads them answers `false` and implements
    /// [`Consumer::consume_shared`], and a fan-out lends it the batch instead of copying it.
    fn mutates_data(&self) -> bool {
        true
    }
    /// Consumes a batch this consumer may only read. The default copies it for `consume`,
    /// which is right for a consumer that mutates.
    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        self.consume(batch.clone()).await
    }
    /// Flush what is held and stop. Called once, upstream components first, so anything
    /// a processor flushes still reaches a running exporter.
    async fn shutdown(&self) {}
}

pub type SharedConsumer = Arc<dyn Consumer>;

/// A receiver's downstream: one consumer per signal it was wired for.
#[derive(Clone, Default)]
pub struct Consumers {
    pub traces: Option<SharedConsumer>,
    pub metrics: Option<SharedConsumer>,
    pub logs: Option<SharedConsumer>,
}

impl Consumers {
    pub fn get(&self, signal: Signal) -> Option<&SharedConsumer> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }
    pub fn set(&mut self, signal: Signal, c: SharedConsumer) {
        match signal {
            Signal::Traces => self.traces = Some(c),
            Signal::Metrics => self.metrics = Some(c),
            Signal::Logs => self.logs = Some(c),
        }
    }
}

/// Something that listens and produces: receivers, and the receiving side of connectors.
#[async_trait]
pub trait Receiver: Send + Sync {
    /// Binds and starts serving; returns once it is listening.
    async fn start(&self) -> anyhow::Result<()>;
    /// Stops taking new data and waits for in-flight requests.
    async fn shutdown(&self);
}

/// Extensions run beside pipelines (health_check, storage, query UIs).
#[async_trait]
pub trait Extension: Send + Sync {
    async fn start(&self) -> anyhow::Result<()>;
    async fn shutdown(&self);
}

/// What every component gets when it is built.
#[derive(Clone)]
pub struct BuildContext {
    pub id: ComponentId,
    pub telemetry: Arc<SelfTelemetry>,
    pub host: Arc<Host>,
}

/// Where the outcome of a requested reload goes: what to tell the requester (the config's
/// warnings and errors, and what happened).
pub type ReloadReply = tokio::sync::oneshot::Sender<Result<String, String>>;

/// What an extension provides to the others is found by its type and name.
pub type ProvidedKey = (std::any::TypeId, String);

/// Shared state of the running collector that components may look at. It outlives a
/// reload: the listening sockets and what kept extensions provide carry over.
#[derive(Default)]
pub struct Host {
    /// Set once every pipeline is running; cleared at shutdown (health_check reads it).
    pub ready: std::sync::atomic::AtomicBool,
    /// The listening sockets of the collector's components (kept across a reload).
    pub listeners: crate::config::endpoint::Listeners,
    /// What extensions provide to other components, by type and name (a storage for a
    /// persistent queue by its extension id, a trace store by its backend name).
    provided: std::sync::Mutex<BTreeMap<ProvidedKey, Arc<dyn std::any::Any + Send + Sync>>>,
    /// Where reload requests go (`POST /reload` on the health check), once the process
    /// that can reload listens (`reload_requests`).
    reloads: std::sync::Mutex<Option<tokio::sync::mpsc::Sender<ReloadReply>>>,
    /// Exporters whose sends are currently failing, with the time of the first failure in
    /// the current run of failures (health_check reads it).
    pub failing_exporters: std::sync::Mutex<BTreeMap<String, (std::time::Instant, String)>>,
}

impl Host {
    /// Makes `value` available to other components as a `T` named `name`. A second `T`
    /// under the same name is refused (two extensions claiming one name).
    pub fn provide<T: Send + Sync + 'static>(
        &self,
        name: &str,
        value: Arc<T>,
    ) -> Result<(), String> {
        let mut provided = self.provided.lock().expect("host lock");
        let key = (std::any::TypeId::of::<T>(), name.to_string());
        if provided.contains_key(&key) {
            return Err(format!("\"{name}\" is provided twice"));
        }
        provided.insert(key, value);
        Ok(())
    }

    /// The `T` named `name` that an extension provides, if any.
    pub fn extension<T: Send + Sync + 'static>(&self, name: &str) -> Option<Arc<T>> {
        let provided = self.provided.lock().expect("host lock");
        provided
            .get(&(std::any::TypeId::of::<T>(), name.to_string()))
            .and_then(|v| v.clone().downcast::<T>().ok())
    }

    /// The requests to reload the configuration, for the one who can carry them out.
    pub fn reload_requests(&self) -> tokio::sync::mpsc::Receiver<ReloadReply> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        *self.reloads.lock().expect("host lock") = Some(tx);
        rx
    }

    /// Asks for a reload and waits for its outcome.
    pub async fn request_reload(&self) -> Result<String, String> {
        let tx = self.reloads.lock().expect("host lock").clone();
        let Some(tx) = tx else {
            return Err("this collector cannot reload its configuration\n".into());
        };
        let (reply, outcome) = tokio::sync::oneshot::channel();
        if tx.send(reply).await.is_err() {
            return Err("the collector is stopping\n".into());
        }
        outcome
            .await
            .unwrap_or_else(|_| Err("the collector is stopping\n".into()))
    }

    /// Everything provided so far (the service notes what each extension added).
    pub(crate) fn provided_keys(&self) -> Vec<ProvidedKey> {
        self.provided
            .lock()
            .expect("host lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Takes back what a stopped extension provided.
    pub(crate) fn withdraw(&self, keys: &[ProvidedKey]) {
        let mut provided = self.provided.lock().expect("host lock");
        for key in keys {
            provided.remove(key);
        }
    }

    /// Forgets exporter failures of a previous run.
    pub(crate) fn clear_failures(&self) {
        self.failing_exporters
            .lock()
            .expect("failing exporters lock")
            .clear();
    }

    /// The names under which a `T` is provided, for error messages.
    pub fn provided_names<T: 'static>(&self) -> Vec<String> {
        let provided = self.provided.lock().expect("host lock");
        provided
            .keys()
            .filter(|(t, _)| *t == std::any::TypeId::of::<T>())
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Records the outcome of one send attempt of exporter `id`.
    pub fn exporter_outcome(&self, id: &str, error: Option<&str>) {
        let mut f = self
            .failing_exporters
            .lock()
            .expect("failing exporters lock");
        match error {
            None => {
                f.remove(id);
            }
            Some(e) => {
                let entry = f
                    .entry(id.to_string())
                    .or_insert_with(|| (std::time::Instant::now(), String::new()));
                entry.1 = e.to_string();
            }
        }
    }
}

/// Hands every batch to several consumers. Those that only read it are lent the batch;
/// only consumers that mutate get a copy, and the last of them gets the original, so a
/// fan-out to read-only exporters (the trace store, span metrics, a file) never copies.
pub struct Fanout {
    readers: Vec<SharedConsumer>,
    writers: Vec<SharedConsumer>,
}

impl Fanout {
    fn new(consumers: Vec<SharedConsumer>) -> Self {
        let (writers, readers) = consumers.into_iter().partition(|c| c.mutates_data());
        Fanout { readers, writers }
    }

    async fn lend(&self, batch: &Batch, first_err: &mut Option<ConsumeError>) {
        for c in &self.readers {
            if let Err(e) = c.consume_shared(batch).await {
                first_err.get_or_insert(e);
            }
        }
    }
}

#[async_trait]
impl Consumer for Fanout {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let mut first_err = None;
        self.lend(&batch, &mut first_err).await;
        if let Some((last, rest)) = self.writers.split_last() {
            for c in rest {
                if let Err(e) = c.consume(batch.clone()).await {
                    first_err.get_or_insert(e);
                }
            }
            if let Err(e) = last.consume(batch).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn mutates_data(&self) -> bool {
        !self.writers.is_empty()
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        let mut first_err = None;
        self.lend(batch, &mut first_err).await;
        for c in &self.writers {
            if let Err(e) = c.consume(batch.clone()).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Builds a fan-out only where there really are several consumers.
pub fn fanout(mut consumers: Vec<SharedConsumer>) -> SharedConsumer {
    assert!(!consumers.is_empty(), "fan-out to no consumer");
    if consumers.len() == 1 {
        consumers.pop().expect("one consumer")
    } else {
        Arc::new(Fanout::new(consumers))
    }
}

/// The node type a config decoder works on, re-exported for component modules.
pub type ConfigNode = Node;

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
    use std::sync::Mutex;

    /// Where the batch's resources live in memory, and the first resource's attribute keys,
    /// as each consumer saw them; a writer adds a `mutated_by` attribute.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(&'static str, usize, Vec<String>)>>);

    struct Probe {
        name: &'static str,
        writes: bool,
        seen: Arc<Seen>,
    }

    impl Probe {
        fn record(&self, rs: &[ResourceSpans]) {
            let keys = rs[0]
                .resource
                .as_ref()
                .map(|r| r.attributes.iter().map(|kv| kv.key.clone()).collect())
                .unwrap_or_default();
            self.seen
                .0
                .lock()
                .unwrap()
                .push((self.name, rs.as_ptr() as usize, keys));
        }
    }

    #[async_trait]
    impl Consumer for Probe {
        async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
            let Batch::Traces(mut rs) = batch else {
                unreachable!()
            };
            self.record(&rs);
            if self.writes {
                rs[0]
                    .resource
                    .get_or_insert_with(Resource::default)
                    .attributes
                    .push(KeyValue {
                        key: format!("mutated_by_{}", self.name),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::BoolValue(true)),
                        }),
                        ..Default::default()
                    });
            }
            Ok(())
        }

        fn mutates_data(&self) -> bool {
            self.writes
        }

        async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
            assert!(!self.writes, "a writer is never lent a batch");
            let Batch::Traces(rs) = batch else {
                unreachable!()
            };
            self.record(rs);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_fanout_lends_the_batch_to_readers_and_copies_only_for_writers() {
        let seen = Arc::new(Seen::default());
        let probe = |name, writes| -> SharedConsumer {
            Arc::new(Probe {
                name,
                writes,
                seen: seen.clone(),
            })
        };
        // Writers first in the list, so a writer's change could reach a reader if the
        // fan-out handed on one copy.
        let out = fanout(vec![
            probe("writer_a", true),
            probe("reader_1", false),
            probe("writer_b", true),
            probe("reader_2", false),
        ]);
        assert!(out.mutates_data());
        let rs = vec![ResourceSpans::default()];
        let original = rs.as_ptr() as usize;
        out.consume(Batch::Traces(rs)).await.unwrap();

        let seen = seen.0.lock().unwrap();
        let at = |name: &str| seen.iter().find(|s| s.0 == name).unwrap().clone();
        assert_eq!(at("reader_1").1, original, "reader 1 read the original");
        assert_eq!(at("reader_2").1, original, "reader 2 read the original");
        assert_ne!(
            at("writer_a").1,
            original,
            "a writer other than the last gets a copy"
        );
        assert_eq!(
            at("writer_b").1,
            original,
            "the last writer gets the original"
        );
        for (name, _, keys) in seen.iter() {
            assert!(keys.is_empty(), "{name} saw another's change: {keys:?}");
        }
        assert_eq!(seen.len(), 4);
    }

    #[tokio::test]
    async fn a_fanout_of_readers_is_itself_a_reader() {
        let seen = Arc::new(Seen::default());
        let out = fanout(
            ["a", "b", "c"]
                .into_iter()
                .map(|name| {
                    Arc::new(Probe {
                        name,
                        writes: false,
                        seen: seen.clone(),
                    }) as SharedConsumer
                })
                .collect(),
        );
        assert!(!out.mutates_data());
        let batch = Batch::Traces(vec![ResourceSpans::default()]);
        let Batch::Traces(rs) = &batch else {
            unreachable!()
        };
        let original = rs.as_ptr() as usize;
        out.consume_shared(&batch).await.unwrap();
        assert!(seen.0.lock().unwrap().iter().all(|s| s.1 == original));
    }
}
