//! Building the pipelines: each pipeline's processors in front of its exporters and
//! connectors, every exporter and connector built once per signal and shared, fan-outs only
//! where there are several consumers.

use crate::component::{BuildContext, Host, SharedConsumer, fanout};
use crate::config::{ComponentDef, ComponentId, ComponentRef, Config, Section};
use crate::pdata::Signal;
use crate::registry;
use crate::telemetry::SelfTelemetry;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub(super) struct Builder<'a> {
    pub(super) cfg: &'a Config,
    pub(super) host: Arc<Host>,
    pub(super) telemetry: Arc<SelfTelemetry>,
    pub(super) entries: BTreeMap<usize, SharedConsumer>,
    pub(super) building: BTreeSet<usize>,
    pub(super) exporters: BTreeMap<(ComponentId, Signal), SharedConsumer>,
    pub(super) connectors: BTreeMap<(ComponentId, Signal, Signal), SharedConsumer>,
    pub(super) processors: Vec<(bool, SharedConsumer)>,
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
    pub(super) fn entry(&mut self, i: usize) -> anyhow::Result<SharedConsumer> {
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
            next = (f.build)(registry::decoded(d)?, self.ctx(&d.id), p.signal, next)
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
            let c = (f.build)(registry::decoded(d)?, self.ctx(&d.id), signal)
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
            let c = (f.build)(
                registry::decoded(&d)?,
                self.ctx(&d.id),
                signal,
                to,
                fanout(nexts),
            )
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
