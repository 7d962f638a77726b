//! Turns a validated [`Config`] into the running graph — receivers → processors → exporters,
//! connectors joining pipelines — and takes it down again in an order that loses nothing:
//! receivers stop first, processors flush downstream, exporters drain last.
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
use crate::config::{ComponentId, Config, Section};
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
    extensions: Vec<(ComponentId, Arc<dyn Extension>)>,
    metrics_server: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Builds and starts everything. The config must have passed [`validate`].
    pub async fn start(cfg: &Config) -> anyhow::Result<Service> {
        let host = Arc::new(Host::default());
        let telemetry = Arc::new(SelfTelemetry::default());

        let metrics_server = if cfg.telemetry.metrics.level != "none" {
            Some(serve_own_metrics(&cfg.telemetry.metrics.address, telemetry.clone()).await?)
        } else {
            None
        };

        let mut extensions = Vec::new();
        for r in &cfg.service_extensions {
            let d = cfg.find(Section::Extensions, &r.id).expect("validated");
            let f = registry::find_extension(&d.id.kind).expect("validated type");
            let ctx = BuildContext {
                id: d.id.clone(),
                telemetry: telemetry.clone(),
                host: host.clone(),
            };
            let ext = (f.build)(registry::decoded(Section::Extensions, d)?, ctx)
                .with_context(|| format!("extensions::{}", d.id))?;
            ext.start()
                .await
                .with_context(|| format!("starting extension {}", d.id))?;
            extensions.push((d.id.clone(), ext));
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
        for i in 0..cfg.pipelines.len() {
            b.entry(i)?;
        }

        let mut receivers = Vec::new();
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
            let r = (f.build)(registry::decoded(Section::Receivers, d)?, ctx, consumers)
                .with_context(|| format!("receivers::{}", d.id))?;
            r.start()
                .await
                .with_context(|| format!("starting receiver {}", d.id))?;
            receivers.push((d.id.clone(), r));
        }

        // Shut down processors of pipelines fed by receivers before connectors, and those fed by
        // connectors after, so whatever a connector flushes still finds a running pipeline.
        // Processors were built downstream first; shut them down upstream first.
        let (late, early): (Vec<_>, Vec<_>) = b
            .processors
            .into_iter()
            .rev()
            .partition(|(fed_by_connector, _)| *fed_by_connector);
        host.ready.store(true, Ordering::SeqCst);
        Ok(Service {
            host,
            telemetry,
            receivers,
            processors: early.into_iter().map(|(_, c)| c).collect(),
            late_processors: late.into_iter().map(|(_, c)| c).collect(),
            connectors: b.connectors.into_values().collect(),
            exporters: b.exporters.into_values().collect(),
            extensions,
            metrics_server,
        })
    }

    /// Stops receivers, flushes processors and connectors downstream, drains exporters.
    pub async fn shutdown(self) {
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
        for (_, x) in self.extensions.iter().rev() {
            x.shutdown().await;
        }
        if let Some(h) = self.metrics_server {
            h.abort();
        }
    }
}
