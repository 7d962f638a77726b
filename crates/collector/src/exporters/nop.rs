//! The `nop` exporter (the Go collector's nopexporter): accepts everything and drops it.

use crate::component::{ConsumeError, Consumer};
use crate::pdata::{Batch, Signal};
use crate::registry::ExporterFactory;
use async_trait::async_trait;
use std::sync::Arc;

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "nop",
    aliases: &[],
    description: "Accepts and drops everything (for tests and benchmarks)",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: crate::registry::validate::<NopConfig>,
    build: |_, _, _| Ok(Arc::new(Nop)),
};

#[derive(Debug, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NopConfig {}
impl crate::registry::ComponentConfig for NopConfig {}

struct Nop;

#[async_trait]
impl Consumer for Nop {
    async fn consume(&self, _: Batch) -> Result<(), ConsumeError> {
        Ok(())
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, _: &Batch) -> Result<(), ConsumeError> {
        Ok(())
    }
}
