//! The `jaeger_storage` extension, named and configured as Jaeger v2's: it owns the trace
//! stores ("backends") that `jaeger_storage_exporter` writes to and `jaeger_query` reads,
//! so the collector itself is a small Jaeger for `make run`.
//!
//! ```yaml
//! extensions:
//!   jaeger_storage:
//!     backends:
//!       lab_store:
//!         memory:
//!           max_traces: 100000
//!           max_logs: 100000      # log records shown on their spans
//! ```
//!
//! How the three components meet: when this extension is built it creates each backend's
//! store and puts it in `Host::extensions` under `jaeger_storage/<backend>`. Extensions are
//! built and started in `service::extensions` order, all before any pipeline, so an exporter
//! always finds the store, and `jaeger_query` finds it when `jaeger_storage` is listed before
//! it; otherwise its build fails with an error naming `storage::traces` and the fix. Creating
//! stores at build rather than lazily on first use means a backend name that is not defined
//! is a start-up error, never an empty trace explorer.

pub mod model;
pub mod store;
pub mod translate;

use crate::component::{BuildContext, Extension, Host};
use crate::config::Node;
use crate::registry::{self, ComponentConfig, ExtensionFactory};
use async_trait::async_trait;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{Limits, MemoryStore};

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "jaeger_storage",
    description: "Jaeger v2's trace storage: named in-memory trace stores for jaeger_query and jaeger_storage_exporter",
    validate: |n, p, e| {
        registry::check::<JaegerStorageConfig>(n, p, e);
    },
    build,
};

/// The key under which a backend's store is found in `Host::extensions`.
pub fn host_key(backend: &str) -> String {
    format!("jaeger_storage/{backend}")
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct JaegerStorageConfig {
    /// Trace stores by name (Jaeger's older name for this key, `trace_backends`, is accepted).
    #[serde(alias = "trace_backends")]
    pub backends: BTreeMap<String, BackendConfig>,
}

/// One backend: exactly one storage type. Only `memory` exists here; Jaeger's other types
/// are recognised so the error can say so.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub memory: Option<MemoryConfig>,
    pub badger: Option<IgnoredAny>,
    pub cassandra: Option<IgnoredAny>,
    pub elasticsearch: Option<IgnoredAny>,
    pub opensearch: Option<IgnoredAny>,
    pub clickhouse: Option<IgnoredAny>,
    pub grpc: Option<IgnoredAny>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Most traces kept; the oldest are evicted first. Default 100000.
    pub max_traces: usize,
    /// Most spans kept, whatever the trace count: bounds memory when traces are large
    /// (not in Jaeger; ~1 KiB each). Default 100000.
    pub max_spans: usize,
    /// Most log records kept to show on their spans (fed by `jaeger_storage_exporter` in a
    /// logs pipeline; the oldest are dropped first). Not in Jaeger. Default 100000.
    pub max_logs: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_traces: 100_000,
            max_spans: 100_000,
            max_logs: store::DEFAULT_MAX_LOGS,
        }
    }
}

impl ComponentConfig for JaegerStorageConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.backends.is_empty() {
            v.push((
                "",
                "backends is required: define at least one, e.g. backends: {lab_store: {memory: {max_traces: 100000}}}".into(),
            ));
        }
        for (name, b) in &self.backends {
            let others: Vec<&str> = [
                ("badger", b.badger.is_some()),
                ("cassandra", b.cassandra.is_some()),
                ("elasticsearch", b.elasticsearch.is_some()),
                ("opensearch", b.opensearch.is_some()),
                ("clickhouse", b.clickhouse.is_some()),
                ("grpc", b.grpc.is_some()),
            ]
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect();
            if !others.is_empty() {
                v.push((
                    "backends",
                    format!(
                        "backend \"{name}\": the {} storage is not available in this collector; use memory (run real Jaeger for the others)",
                        others.join(", ")
                    ),
                ));
                continue;
            }
            match &b.memory {
                None => v.push((
                    "backends",
                    format!(
                        "backend \"{name}\" has no storage type; add memory: {{max_traces: 100000}}"
                    ),
                )),
                Some(m) => {
                    if m.max_traces == 0 {
                        v.push((
                            "backends",
                            format!("backend \"{name}\": memory.max_traces must be at least 1"),
                        ));
                    }
                    if m.max_logs == 0 {
                        v.push((
                            "backends",
                            format!("backend \"{name}\": memory.max_logs must be at least 1"),
                        ));
                    }
                    if m.max_spans == 0 {
                        v.push((
                            "backends",
                            format!("backend \"{name}\": memory.max_spans must be at least 1"),
                        ));
                    }
                }
            }
        }
        v
    }
}

fn build(node: &Node, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: JaegerStorageConfig = registry::parse(node, &format!("extensions::{}", ctx.id))?;
    let mut stores = BTreeMap::new();
    {
        let mut ext = ctx.host.extensions.lock().expect("host extensions lock");
        for (name, b) in &cfg.backends {
            let m = b.memory.clone().unwrap_or_default();
            let key = host_key(name);
            anyhow::ensure!(
                !ext.contains_key(&key),
                "backend \"{name}\" is defined by two jaeger_storage extensions; give each a distinct name"
            );
            let store = Arc::new(
                MemoryStore::new(Limits {
                    max_traces: m.max_traces,
                    max_spans: m.max_spans,
                })
                .with_max_logs(m.max_logs),
            );
            ext.insert(key, store.clone());
            stores.insert(name.clone(), store);
        }
    }
    Ok(Arc::new(JaegerStorage {
        id: ctx.id.to_string(),
        stores,
    }))
}

/// The store of a backend, for `jaeger_query` and `jaeger_storage_exporter`. The error
/// names the defined backends and the ordering rule.
pub fn find_store(host: &Host, backend: &str) -> Result<Arc<MemoryStore>, String> {
    let ext = host.extensions.lock().expect("host extensions lock");
    if let Some(any) = ext.get(&host_key(backend))
        && let Ok(store) = any.clone().downcast::<MemoryStore>()
    {
        return Ok(store);
    }
    let known: Vec<&str> = ext
        .keys()
        .filter_map(|k| k.strip_prefix("jaeger_storage/"))
        .collect();
    Err(if known.is_empty() {
        format!(
            "no jaeger_storage backend named \"{backend}\": no jaeger_storage extension runs before this component \
             (define one and list it in service::extensions ahead of jaeger_query)"
        )
    } else {
        format!(
            "no jaeger_storage backend named \"{backend}\" (defined: {})",
            known.join(", ")
        )
    })
}

struct JaegerStorage {
    id: String,
    stores: BTreeMap<String, Arc<MemoryStore>>,
}

#[async_trait]
impl Extension for JaegerStorage {
    async fn start(&self) -> anyhow::Result<()> {
        for (name, s) in &self.stores {
            let l = s.limits();
            tracing::info!(extension = %self.id, backend = %name, max_traces = l.max_traces, max_spans = l.max_spans, max_logs = s.max_logs(), "in-memory trace store ready");
        }
        Ok(())
    }

    async fn shutdown(&self) {}
}
