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

/// Shared state of the running collector that components may look at.
#[derive(Default)]
pub struct Host {
    /// Set once every pipeline is running; cleared at shutdown (health_check reads it).
    pub ready: std::sync::atomic::AtomicBool,
    /// Extensions other components may use by id (e.g. a storage for a persistent queue).
    pub extensions: std::sync::Mutex<BTreeMap<String, Arc<dyn std::any::Any + Send + Sync>>>,
    /// Exporters whose sends are currently failing, with the time of the first failure in
    /// the current run of failures (health_check reads it).
    pub failing_exporters: std::sync::Mutex<BTreeMap<String, (std::time::Instant, String)>>,
}

impl Host {
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

/// Hands every batch to several consumers. The last one gets the original; only the others
/// get a copy, so a pipeline with one exporter never clones.
pub struct Fanout {
    pub consumers: Vec<SharedConsumer>,
}

#[async_trait]
impl Consumer for Fanout {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        let (last, rest) = self.consumers.split_last().expect("fan-out to no consumer");
        let mut first_err = None;
        for c in rest {
            if let Err(e) = c.consume(batch.clone()).await {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = last.consume(batch).await {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Builds a fan-out only where there really are several consumers.
pub fn fanout(mut consumers: Vec<SharedConsumer>) -> SharedConsumer {
    if consumers.len() == 1 {
        consumers.pop().expect("one consumer")
    } else {
        Arc::new(Fanout { consumers })
    }
}

/// The node type a config decoder works on, re-exported for component modules.
pub type ConfigNode = Node;
