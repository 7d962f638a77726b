//! Turns a validated [`Config`] into the running graph — receivers → processors → exporters,
//! connectors joining pipelines — and takes it down again in an order that loses nothing:
//! receivers stop first, processors flush downstream, exporters drain last.
//!
//! A reload ([`Service::reload`]) takes the running graph down the same way and starts the
//! new one on the same [`Host`]: listening sockets whose address is still configured stay
//! open in between (clients queue instead of being refused), and extensions whose settings
//! did not change keep running (the trace store keeps its traces).
//!
//! `validate.rs` checks a config against the registry before anything is built; `graph.rs`
//! builds the pipelines' consumers; `own_metrics.rs` serves the collector's own metrics.

mod graph;
mod own_metrics;
mod validate;

pub use validate::validate;

use graph::Builder;
use own_metrics::serve_own_metrics;

use crate::component::{
    BuildContext, Consumers, Extension, Host, Receiver, SharedConsumer, fanout,
};
use crate::config::{ComponentId, Config, Node, Section, Value};
use crate::pdata::Signal;
use crate::registry;
use crate::telemetry::SelfTelemetry;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The running collector.
pub struct Service {
    pub host: Arc<Host>,
    pub telemetry: Arc<SelfTelemetry>,
    receivers: Vec<(ComponentId, Arc<dyn Receiver>)>,
    /// Processors of pipelines fed by receivers, upstream first.
    processors: Vec<SharedConsumer>,
    /// Processors of pipelines fed by connectors: shut down after the connectors flush.
    late_processors: Vec<SharedConsumer>,
    connectors: Vec<SharedConsumer>,
    exporters: Vec<SharedConsumer>,
    extensions: Vec<RunningExtension>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
}

/// A started extension, with the settings it runs with and what it provided to the host.
struct RunningExtension {
    id: ComponentId,
    settings: Node,
    extension: Arc<dyn Extension>,
    provided: Vec<crate::component::ProvidedKey>,
    /// The addresses it listens on.
    listens: Vec<String>,
}

/// Extensions a reload keeps running: the longest run of `service::extensions`, from the
/// first, whose ids and settings are unchanged (an extension may use one listed before it,
/// never one after, so a kept extension never holds on to a replaced one).
#[derive(Default)]
pub struct Kept(Vec<RunningExtension>);

/// What `after` holds that `before` did not (what an extension added to the host).
fn added<T: PartialEq>(before: &[T], after: Vec<T>) -> Vec<T> {
    after.into_iter().filter(|x| !before.contains(x)).collect()
}

/// The same settings, wherever in the files they are written.
fn same_settings(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_settings(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka.name == kb.name && same_settings(a, b))
        }
        (x, y) => x == y,
    }
}

impl Service {
    /// Builds and starts everything on a host of its own. The config must have passed
    /// [`validate`].
    pub async fn start(cfg: &Config) -> anyhow::Result<Service> {
        Self::start_on(cfg, Arc::new(Host::default()), Kept::default()).await
    }

    /// Builds and starts everything on `host`, reusing the `kept` extensions. On failure,
    /// whatever was started is stopped again before the error is returned.
    pub async fn start_on(cfg: &Config, host: Arc<Host>, kept: Kept) -> anyhow::Result<Service> {
        let mut svc = Service {
            host,
            telemetry: Arc::new(SelfTelemetry::default()),
            receivers: Vec::new(),
            processors: Vec::new(),
            late_processors: Vec::new(),
            connectors: Vec::new(),
            exporters: Vec::new(),
            extensions: Vec::new(),
            metrics_server: None,
        };
        match svc.build(cfg, kept).await {
            Ok(()) => {
                svc.host.ready.store(true, Ordering::SeqCst);
                Ok(svc)
            }
            Err(e) => {
                svc.shutdown_keeping(&[]).await;
                Err(e)
            }
        }
    }

    async fn build(&mut self, cfg: &Config, kept: Kept) -> anyhow::Result<()> {
        let host = self.host.clone();
        let telemetry = self.telemetry.clone();
        host.clear_failures();
        if cfg.telemetry.metrics.level != "none" {
            self.metrics_server = Some(
                serve_own_metrics(
                    &host.listeners,
                    &cfg.telemetry.metrics.address,
                    telemetry.clone(),
                )
                .await?,
            );
        }

        let mut kept = kept.0.into_iter();
        for r in &cfg.service_extensions {
            let d = cfg.find(Section::Extensions, &r.id).expect("validated");
            if let Some(running) = kept.next() {
                debug_assert_eq!(running.id, d.id, "kept extensions are a prefix of the list");
                tracing::info!(extension = %d.id, "unchanged: kept running");
                host.listeners.renew(&running.listens);
                self.extensions.push(running);
                continue;
            }
            let f = registry::find_extension(&d.id.kind).expect("validated type");
            let ctx = BuildContext {
                id: d.id.clone(),
                telemetry: telemetry.clone(),
                host: host.clone(),
            };
            let before = host.provided_keys();
            let ext = (f.build)(registry::decoded(d)?, ctx)
                .with_context(|| format!("extensions::{}", d.id))?;
            let provided = added(&before, host.provided_keys());
            let bound = host.listeners.addresses();
            let started = ext.start().await;
            let listens = added(&bound, host.listeners.addresses());
            self.extensions.push(RunningExtension {
                id: d.id.clone(),
                settings: d.node.clone(),
                extension: ext.clone(),
                provided,
                listens,
            });
            started.with_context(|| format!("starting extension {}", d.id))?;
        }

        let mut b = Builder {
            cfg,
            host: host.clone(),
            telemetry: telemetry.clone(),
            entries: BTreeMap::new(),
            building: BTreeSet::new(),
            exporters: BTreeMap::new(),
            connectors: BTreeMap::new(),
            processors: Vec::new(),
        };
        let built = (0..cfg.pipelines.len()).try_for_each(|i| b.entry(i).map(|_| ()));
        // Shut down processors of pipelines fed by receivers before connectors, and those fed
        // by connectors after, so whatever a connector flushes still finds a running
        // pipeline. Processors were built downstream first; shut them down upstream first.
        let (late, early): (Vec<_>, Vec<_>) = std::mem::take(&mut b.processors)
            .into_iter()
            .rev()
            .partition(|(fed_by_connector, _)| *fed_by_connector);
        self.processors = early.into_iter().map(|(_, c)| c).collect();
        self.late_processors = late.into_iter().map(|(_, c)| c).collect();
        self.connectors = std::mem::take(&mut b.connectors).into_values().collect();
        self.exporters = std::mem::take(&mut b.exporters).into_values().collect();
        built?;

        for d in &cfg.receivers {
            let mut consumers = Consumers::default();
            for signal in Signal::ALL {
                let entries: Vec<SharedConsumer> = cfg
                    .pipelines
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.signal == signal && p.receivers.iter().any(|r| r.id == d.id))
                    .map(|(i, _)| b.entries[&i].clone())
                    .collect();
                if !entries.is_empty() {
                    consumers.set(signal, fanout(entries));
                }
            }
            if consumers.traces.is_none() && consumers.metrics.is_none() && consumers.logs.is_none()
            {
                continue;
            }
            let f = registry::find_receiver(&d.id.kind).expect("validated type");
            let ctx = BuildContext {
                id: d.id.clone(),
                telemetry: telemetry.clone(),
                host: host.clone(),
            };
            let r = (f.build)(registry::decoded(d)?, ctx, consumers)
                .with_context(|| format!("receivers::{}", d.id))?;
            self.receivers.push((d.id.clone(), r.clone()));
            r.start()
                .await
                .with_context(|| format!("starting receiver {}", d.id))?;
        }
        Ok(())
    }

    /// Stops receivers, flushes processors and connectors downstream, drains exporters,
    /// stops extensions.
    pub async fn shutdown(self) {
        self.shutdown_keeping(&[]).await;
    }

    /// Replaces the running graph with one built from `cfg` (which must have passed
    /// [`validate`]): the old one is taken down as at shutdown, except the extensions that
    /// stay the same, then the new one starts. Sockets on addresses `cfg` still listens on
    /// stay open throughout. When the new graph cannot start, the error is returned with
    /// the old configuration running again (started afresh from `old_cfg`).
    pub async fn reload(self, old_cfg: &Config, cfg: &Config) -> (Service, anyhow::Result<()>) {
        let host = self.host.clone();
        let generation = host.listeners.next_generation();
        let keep = self.unchanged_extensions(cfg);
        let kept = self.shutdown_keeping(&keep).await;
        match Service::start_on(cfg, host.clone(), kept).await {
            Ok(svc) => {
                host.listeners.close_older_than(generation);
                (svc, Ok(()))
            }
            Err(e) => {
                let generation = host.listeners.next_generation();
                match Service::start_on(old_cfg, host.clone(), Kept::default()).await {
                    Ok(svc) => {
                        host.listeners.close_older_than(generation);
                        (svc, Err(e))
                    }
                    Err(again) => panic!(
                        "the new configuration failed to start ({e:#}), and so did the previous one ({again:#})"
                    ),
                }
            }
        }
    }

    /// The ids of the leading extensions `cfg` runs with the same settings.
    fn unchanged_extensions(&self, cfg: &Config) -> Vec<ComponentId> {
        self.extensions
            .iter()
            .zip(&cfg.service_extensions)
            .take_while(|(running, r)| {
                running.id == r.id
                    && cfg
                        .find(Section::Extensions, &r.id)
                        .is_some_and(|d| same_settings(&d.node, &running.settings))
            })
            .map(|(running, _)| running.id.clone())
            .collect()
    }

    /// Takes everything down in the order that loses nothing, except the extensions in
    /// `keep`, which are handed back still running.
    async fn shutdown_keeping(self, keep: &[ComponentId]) -> Kept {
        self.host.ready.store(false, Ordering::SeqCst);
        // Receivers wait for their in-flight requests, and those wait for the processors to
        // hand their data on: so the processors flush while the receivers stop.
        let receivers =
            futures::future::join_all(self.receivers.iter().map(|(id, r)| async move {
                tracing::debug!(receiver = %id, "stopping");
                r.shutdown().await;
            }));
        let processors = async {
            for p in &self.processors {
                p.shutdown().await;
            }
        };
        futures::future::join(receivers, processors).await;
        for c in &self.connectors {
            c.shutdown().await;
        }
        for p in &self.late_processors {
            p.shutdown().await;
        }
        for e in &self.exporters {
            e.shutdown().await;
        }
        let mut kept = Vec::new();
        for running in self.extensions.into_iter().rev() {
            if keep.contains(&running.id) {
                kept.push(running);
            } else {
                running.extension.shutdown().await;
                self.host.withdraw(&running.provided);
            }
        }
        kept.reverse();
        if let Some(h) = self.metrics_server {
            h.abort();
        }
        Kept(kept)
    }
}
