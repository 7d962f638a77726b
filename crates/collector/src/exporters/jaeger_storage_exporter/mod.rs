//! The `jaeger_storage_exporter` (Jaeger v2's storage exporter): writes the traces of a
//! pipeline into a `jaeger_storage` backend, where `jaeger_query` finds them. In a logs
//! pipeline it keeps the log records: those that carry a trace and span id are shown on
//! their spans (Jaeger itself has no logs pipeline), and all can be searched by service,
//! level and text.
//!
//! ```yaml
//! exporters:
//!   jaeger_storage_exporter:
//!     trace_storage: lab_store
//! ```

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::extensions::jaeger_storage::persist::Kind;
use crate::extensions::jaeger_storage::{find_store, store::MemoryStore, translate};
use crate::otlp_codec::{self, Encoding};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "jaeger_storage_exporter",
    aliases: &[],
    description: "Writes traces, and the log records of their spans, into a jaeger_storage backend (read by jaeger_query)",
    signals: &[Signal::Traces, Signal::Logs],
    validate: registry::validate::<JaegerStorageExporterConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct JaegerStorageExporterConfig {
    /// Name of a backend defined in the jaeger_storage extension (required).
    pub trace_storage: String,
}

impl ComponentConfig for JaegerStorageExporterConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        if self.trace_storage.is_empty() {
            vec![(
                "",
                "trace_storage is required: the name of a jaeger_storage backend".into(),
            )]
        } else {
            Vec::new()
        }
    }
}

fn build(decoded: &Decoded, ctx: BuildContext, _signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: &JaegerStorageExporterConfig = registry::typed(decoded);
    // The service adds "exporters::<id>" to the error; the key inside it is ours to name.
    let store = find_store(&ctx.host, &cfg.trace_storage)
        .map_err(|e| anyhow::anyhow!("trace_storage: {e}"))?;
    Ok(Arc::new(JaegerStorageExporter {
        store,
        id: ctx.id.to_string(),
    }))
}

struct JaegerStorageExporter {
    store: Arc<MemoryStore>,
    id: String,
}

#[async_trait]
impl Consumer for JaegerStorageExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.consume_shared(&batch).await
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        if let Some(disk) = self.store.persistence() {
            let kind = match batch {
                Batch::Traces(_) => Some(Kind::Traces),
                Batch::Logs(_) => Some(Kind::Logs),
                Batch::Metrics(_) => None,
            };
            if let Some(kind) = kind {
                disk.append(
                    kind,
                    batch.item_count(),
                    otlp_codec::encode(batch, Encoding::Protobuf),
                );
            }
        }
        match batch {
            Batch::Traces(resources) => {
                let (spans, invalid) = translate::spans_from_otlp(resources);
                if invalid > 0 {
                    tracing::warn!(exporter = %self.id, spans = invalid, "dropped spans with an invalid trace or span id");
                }
                self.store.write(spans);
            }
            Batch::Logs(resources) => {
                self.store.write_logs(translate::logs_from_otlp(resources));
            }
            Batch::Metrics(_) => {
                return Err(ConsumeError::permanent(format!(
                    "{} stores traces and logs only",
                    self.id
                )));
            }
        }
        Ok(())
    }
}
