//! Turns a validated [`Config`] into the running graph — receivers → processors → exporters,
//! connectors joining pipelines — and takes it down again in an order that loses nothing:
//! receivers stop first, processors flush downstream, exporters drain last.

use crate::component::{
    BuildContext, Consumers, Extension, Host, Receiver, SharedConsumer, fanout,
};
use crate::config::{ComponentDef, ComponentId, ComponentRef, Config, Errors, Section};
use crate::pdata::Signal;
use crate::registry;
use crate::telemetry::SelfTelemetry;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Checks the config against the component registry: unknown types, component configs,
/// pipeline references and signals. Adds every problem to `errors` and warns about
/// components that are defined but unused.
pub fn validate(cfg: &Config, errors: &mut Errors) {
    for section in Section::ALL {
        check_section(cfg, section, errors);
    }

    for r in &cfg.service_extensions {
        if cfg.find(Section::Extensions, &r.id).is_none() {
            errors.error(
                Some(r.loc.clone()),
                "service::extensions",
                format!(
                    "extension \"{}\" is not defined in the extensions section",
                    r.id
                ),
            );
        }
    }

    if cfg.pipelines.is_empty() {
        errors.error(
            None,
            "service::pipelines",
            "no pipelines are configured: the collector would do nothing",
        );
    }
    let mut used: BTreeSet<(Section, ComponentId)> = BTreeSet::new();
    let mut connector_sides: BTreeMap<ComponentId, (bool, bool)> = BTreeMap::new();
    for p in &cfg.pipelines {
        let base = format!("service::pipelines::{}", p.id());
        let roles = [
            (&p.receivers, Section::Receivers),
            (&p.processors, Section::Processors),
            (&p.exporters, Section::Exporters),
        ];
        for (refs, own) in roles {
            let path = format!("{base}::{}", own.key());
            // Connectors stand where receivers and exporters do, never among processors.
            let with_connectors = own != Section::Processors;
            for r in refs {
                let (section, problem) = if let Some(d) = cfg.find(own, &r.id) {
                    let ok = supports(own, &d.id.kind, p.signal);
                    let problem = format!(
                        "{} \"{}\" does not support {}",
                        own.singular(),
                        r.id,
                        p.signal
                    );
                    (own, (!ok).then_some(problem))
                } else if with_connectors && let Some(d) = cfg.find(Section::Connectors, &r.id) {
                    let consumes = own == Section::Exporters;
                    let sides = connector_sides.entry(r.id.clone()).or_default();
                    if consumes {
                        sides.0 = true;
                    } else {
                        sides.1 = true;
                    }
                    let ok = connector_handles(&d.id.kind, p.signal, consumes);
                    let verb = if consumes { "consume" } else { "produce" };
                    let problem = format!("connector \"{}\" cannot {verb} {}", r.id, p.signal);
                    (Section::Connectors, (!ok).then_some(problem))
                } else {
                    let sections: &[Section] = if with_connectors {
                        &[own, Section::Connectors]
                    } else {
                        &[own]
                    };
                    errors.error(
                        Some(r.loc.clone()),
                        path.clone(),
                        undefined(own.singular(), &r.id, cfg, sections),
                    );
                    continue;
                };
                used.insert((section, r.id.clone()));
                if let Some(msg) = problem {
                    errors.error(Some(r.loc.clone()), path.clone(), msg);
                }
            }
        }
    }
    warn_about_unsafe_acknowledgements(cfg, errors);
    for (id, (as_exporter, as_receiver)) in &connector_sides {
        if as_exporter != as_receiver {
            let d = cfg
                .find(Section::Connectors, id)
                .expect("connector defined");
            errors.error(
                Some(d.key_loc.clone()),
                format!("connectors::{id}"),
                if *as_exporter {
                    "the connector is used as an exporter but no pipeline lists it as a receiver"
                } else {
                    "the connector is used as a receiver but no pipeline lists it as an exporter"
                },
            );
        }
    }
    for s in [
        Section::Receivers,
        Section::Processors,
        Section::Exporters,
        Section::Connectors,
    ] {
        for d in cfg.section(s) {
            if !used.contains(&(s, d.id.clone())) {
                errors.warn(
                    Some(d.key_loc.clone()),
                    format!("{}::{}", s.key(), d.id),
                    format!(
                        "{} \"{}\" is defined but not used in any pipeline",
                        s.singular(),
                        d.id
                    ),
                );
            }
        }
    }
    for d in &cfg.extensions {
        if !cfg.service_extensions.iter().any(|r| r.id == d.id) {
            errors.warn(
                Some(d.key_loc.clone()),
                format!("extensions::{}", d.id),
                format!(
                    "extension \"{}\" is defined but not enabled in service::extensions",
                    d.id
                ),
            );
        }
    }
}

/// A persistent queue only keeps what reaches it: a batch processor that acknowledges on
/// receipt can still lose acknowledged data in a crash.
fn warn_about_unsafe_acknowledgements(cfg: &Config, errors: &mut Errors) {
    for p in &cfg.pipelines {
        let durable = p
            .exporters
            .iter()
            .filter_map(|r| cfg.find(Section::Exporters, &r.id))
            .any(|d| {
                d.node
                    .get("sending_queue")
                    .and_then(|q| q.get("storage"))
                    .is_some_and(|s| !s.is_null())
            });
        if !durable {
            continue;
        }
        for r in &p.processors {
            let Some(d) = cfg.find(Section::Processors, &r.id) else {
                continue;
            };
            let waits = d.node.get("wait_for_result").is_some_and(|n| {
                matches!(n.value, crate::config::Value::Bool(true))
                    || n.scalar_text().as_deref() == Some("true")
            });
            if d.id.kind == "batch" && !waits {
                errors.warn(
                    Some(r.loc.clone()),
                    format!("service::pipelines::{}::processors", p.id()),
                    format!("\"{}\" acknowledges data before it reaches the persistent queue, so a crash can lose acknowledged data; set wait_for_result: true on it", r.id),
                );
            }
        }
    }
}

/// Whether a component type can sit in a pipeline of `signal` (unknown types are reported
/// elsewhere, so they pass here).
fn supports(section: Section, kind: &str, signal: Signal) -> bool {
    let signals = match section {
        Section::Receivers => registry::find_receiver(kind).map(|f| f.signals),
        Section::Processors => registry::find_processor(kind).map(|f| f.signals),
        Section::Exporters => registry::find_exporter(kind).map(|f| f.signals),
        Section::Connectors | Section::Extensions => None,
    };
    signals.is_none_or(|s| s.contains(&signal))
}

/// Whether a connector type consumes (at the end of a pipeline) or produces (at its start)
/// `signal`.
fn connector_handles(kind: &str, signal: Signal, consumes: bool) -> bool {
    registry::find_connector(kind).is_none_or(|f| {
        f.pairs.iter().any(|(from, to)| {
            if consumes {
                *from == signal
            } else {
                *to == signal
            }
        })
    })
}

fn undefined(what: &str, id: &ComponentId, cfg: &Config, sections: &[Section]) -> String {
    let defined: Vec<String> = sections
        .iter()
        .flat_map(|s| cfg.section(*s).iter().map(|d| d.id.to_string()))
        .collect();
    let hint = if defined.is_empty() {
        "none are defined".to_string()
    } else {
        format!("defined: {}", defined.join(", "))
    };
    format!("{what} \"{id}\" is not defined ({hint})")
}

fn check_section(cfg: &Config, section: Section, errors: &mut Errors) {
    for d in cfg.section(section) {
        let path = format!("{}::{}", section.key(), d.id);
        match registry::validator(section, &d.id.kind) {
            Ok(validate) => validate(&d.node, &path, errors),
            Err(known) => errors.error(
                Some(d.key_loc.clone()),
                path,
                format!(
                    "unknown {} type \"{}\"; known {} types: {}",
                    section.singular(),
                    d.id.kind,
                    section.singular(),
                    known.join(", ")
                ),
            ),
        }
    }
}

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

struct Builder<'a> {
    cfg: &'a Config,
    host: Arc<Host>,
    telemetry: Arc<SelfTelemetry>,
    entries: BTreeMap<usize, SharedConsumer>,
    building: BTreeSet<usize>,
    exporters: BTreeMap<(ComponentId, Signal), SharedConsumer>,
    connectors: BTreeMap<(ComponentId, Signal, Signal), SharedConsumer>,
    processors: Vec<(bool, SharedConsumer)>,
}

impl Builder<'_> {
    fn ctx(&self, id: &ComponentId) -> BuildContext {
        BuildContext {
            id: id.clone(),
            telemetry: self.telemetry.clone(),
            host: self.host.clone(),
        }
    }

    fn def(&self, s: Section, id: &ComponentId) -> &ComponentDef {
        self.cfg.find(s, id).expect("validated reference")
    }

    /// The consumer at the head of pipeline `i`.
    fn entry(&mut self, i: usize) -> anyhow::Result<SharedConsumer> {
        if let Some(c) = self.entries.get(&i) {
            return Ok(c.clone());
        }
        let p = &self.cfg.pipelines[i];
        if !self.building.insert(i) {
            anyhow::bail!("pipeline {} is part of a cycle through connectors", p.id());
        }
        let mut outs = Vec::new();
        for r in &p.exporters {
            outs.push(self.exporter_or_connector(r, p.signal)?);
        }
        let mut next = fanout(outs);
        let fed_by_connector = p
            .receivers
            .iter()
            .any(|r| self.cfg.find(Section::Connectors, &r.id).is_some());
        for r in p.processors.iter().rev() {
            let d = self.def(Section::Processors, &r.id);
            let f = registry::find_processor(&d.id.kind).expect("validated type");
            let path = format!("processors::{}", d.id);
            next = (f.build)(&d.node, self.ctx(&d.id), p.signal, next)
                .with_context(|| format!("{path} in pipeline {}", p.id()))?;
            self.processors.push((fed_by_connector, next.clone()));
        }
        self.entries.insert(i, next.clone());
        Ok(next)
    }

    fn exporter_or_connector(
        &mut self,
        r: &ComponentRef,
        signal: Signal,
    ) -> anyhow::Result<SharedConsumer> {
        if let Some(d) = self.cfg.find(Section::Exporters, &r.id) {
            let key = (d.id.clone(), signal);
            if let Some(c) = self.exporters.get(&key) {
                return Ok(c.clone());
            }
            let f = registry::find_exporter(&d.id.kind).expect("validated type");
            let c = (f.build)(&d.node, self.ctx(&d.id), signal)
                .with_context(|| format!("exporters::{}", d.id))?;
            self.exporters.insert(key, c.clone());
            return Ok(c);
        }
        let d = self.def(Section::Connectors, &r.id).clone();
        let f = registry::find_connector(&d.id.kind).expect("validated type");
        // One instance per signal it produces, feeding every pipeline that lists it as a receiver.
        let mut by_signal: BTreeMap<Signal, Vec<usize>> = BTreeMap::new();
        for (j, q) in self.cfg.pipelines.iter().enumerate() {
            if q.receivers.iter().any(|x| x.id == d.id) {
                by_signal.entry(q.signal).or_default().push(j);
            }
        }
        let mut outs = Vec::new();
        for (to, pipes) in by_signal {
            if !f.pairs.contains(&(signal, to)) {
                continue;
            }
            let key = (d.id.clone(), signal, to);
            if let Some(c) = self.connectors.get(&key) {
                outs.push(c.clone());
                continue;
            }
            let mut nexts = Vec::new();
            for j in pipes {
                nexts.push(self.entry(j)?);
            }
            let c = (f.build)(&d.node, self.ctx(&d.id), signal, to, fanout(nexts))
                .with_context(|| format!("connectors::{}", d.id))?;
            self.connectors.insert(key, c.clone());
            outs.push(c);
        }
        anyhow::ensure!(
            !outs.is_empty(),
            "connector {} has no pipeline to feed from {signal}",
            d.id
        );
        Ok(fanout(outs))
    }
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
            let ext = (f.build)(&d.node, ctx).with_context(|| format!("extensions::{}", d.id))?;
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
            let r = (f.build)(&d.node, ctx, consumers)
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

async fn serve_own_metrics(
    addr: &str,
    telemetry: Arc<SelfTelemetry>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::{Router, http::header, routing::get};
    let listener = tokio::net::TcpListener::bind(crate::config::endpoint::listen_address(addr))
        .await
        .with_context(|| {
            format!("service::telemetry::metrics::address: cannot listen on {addr}")
        })?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let t = telemetry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    t.render(),
                )
            }
        }),
    );
    tracing::info!(address = %addr, "serving the collector's own metrics at /metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "own metrics server stopped");
        }
    }))
}
