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
//! `sqlite: {path: .lab/traces.db, max_mib: 512, max_age: 24h}` instead of `memory` keeps the
//! same store on disk too (see [`persist`]), so a restart finds the traces from before.
//!
//! How the three components meet: when this extension is built it creates each backend's
//! store and provides it to the other components (`Host::provide`) under the backend's
//! name. Extensions are built and started in `service::extensions` order, all before any
//! pipeline, so an exporter
//! always finds the store, and `jaeger_query` finds it when `jaeger_storage` is listed before
//! it; otherwise its build fails with an error naming `storage::traces` and the fix. Creating
//! stores at build rather than lazily on first use means a backend name that is not defined
//! is a start-up error, never an empty trace explorer.

pub mod model;
pub mod persist;
pub mod store;
pub mod translate;

use crate::component::{BuildContext, Extension, Host};
use crate::config::GoDuration;
use crate::otlp_codec::{self, Encoding};
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExtensionFactory};
use async_trait::async_trait;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{Limits, MemoryStore};

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "jaeger_storage",
    description: "Jaeger v2's trace storage: named trace stores (memory, or memory kept on disk with sqlite) for jaeger_query and jaeger_storage_exporter",
    validate: registry::validate::<JaegerStorageConfig>,
    build,
};

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
    /// The memory store, kept on disk too (not in Jaeger, whose embedded store is badger).
    pub sqlite: Option<SqliteConfig>,
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

/// The `sqlite` backend: the memory store and its limits, plus a SQLite file that every
/// batch is appended to and that the store is filled from at start, so traces and logs
/// survive a restart or a SIGKILL (losing at most the last 200 ms).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (required); its directory is created.
    pub path: String,
    /// As for `memory`. Default 100000.
    pub max_traces: usize,
    /// As for `memory`. Default 100000.
    pub max_spans: usize,
    /// As for `memory`. Default 100000.
    pub max_logs: usize,
    /// The file's size bound in MiB: the oldest batches are deleted beyond it. Default 512.
    pub max_mib: u64,
    /// Batches older than this are deleted and not read back. Default 24h.
    pub max_age: GoDuration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: String::new(),
            max_traces: 100_000,
            max_spans: 100_000,
            max_logs: store::DEFAULT_MAX_LOGS,
            max_mib: 512,
            max_age: GoDuration::secs(24 * 3600),
        }
    }
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
            // Both kinds share the limits; check whichever is given.
            let limits = match (&b.memory, &b.sqlite) {
                (None, None) => {
                    v.push((
                        "backends",
                        format!(
                            "backend \"{name}\" has no storage type; add memory: {{max_traces: 100000}} (or sqlite: {{path: traces.db}} to keep traces across restarts)"
                        ),
                    ));
                    continue;
                }
                (Some(_), Some(_)) => {
                    v.push((
                        "backends",
                        format!("backend \"{name}\" has both memory and sqlite; choose one"),
                    ));
                    continue;
                }
                (Some(m), None) => ("memory", m.max_traces, m.max_spans, m.max_logs),
                (None, Some(q)) => {
                    if q.path.trim().is_empty() {
                        v.push((
                            "backends",
                            format!(
                                "backend \"{name}\": sqlite.path is required (the database file)"
                            ),
                        ));
                    }
                    if q.max_mib == 0 {
                        v.push((
                            "backends",
                            format!("backend \"{name}\": sqlite.max_mib must be at least 1"),
                        ));
                    }
                    ("sqlite", q.max_traces, q.max_spans, q.max_logs)
                }
            };
            let (kind, max_traces, max_spans, max_logs) = limits;
            for (key, value) in [
                ("max_traces", max_traces),
                ("max_spans", max_spans),
                ("max_logs", max_logs),
            ] {
                if value == 0 {
                    v.push((
                        "backends",
                        format!("backend \"{name}\": {kind}.{key} must be at least 1"),
                    ));
                }
            }
        }
        v
    }
}

fn build(decoded: &Decoded, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: JaegerStorageConfig = registry::typed::<JaegerStorageConfig>(decoded).clone();
    let mut stores = BTreeMap::new();
    {
        for (name, b) in &cfg.backends {
            anyhow::ensure!(
                ctx.host.extension::<MemoryStore>(name).is_none(),
                "backend \"{name}\" is defined by two jaeger_storage extensions; give each a distinct name"
            );
            let store = Arc::new(match &b.sqlite {
                Some(q) => open_sqlite(name, q)?,
                None => {
                    let m = b.memory.clone().unwrap_or_default();
                    MemoryStore::new(Limits {
                        max_traces: m.max_traces,
                        max_spans: m.max_spans,
                    })
                    .with_max_logs(m.max_logs)
                }
            });
            ctx.host
                .provide(name, store.clone())
                .map_err(anyhow::Error::msg)?;
            stores.insert(name.clone(), store);
        }
    }
    Ok(Arc::new(JaegerStorage {
        id: ctx.id.to_string(),
        stores,
    }))
}

/// A memory store kept on disk: opened, then filled with what the file holds.
fn open_sqlite(name: &str, q: &SqliteConfig) -> anyhow::Result<MemoryStore> {
    let settings = persist::Settings {
        path: q.path.clone().into(),
        max_bytes: q.max_mib.saturating_mul(1024 * 1024),
        max_age: q.max_age.0,
    };
    let (disk, replayed) = persist::Persistence::open(&settings, q.max_spans, q.max_logs)
        .map_err(|e| anyhow::anyhow!("backend \"{name}\": sqlite: {e}"))?;
    let store = MemoryStore::new(Limits {
        max_traces: q.max_traces,
        max_spans: q.max_spans,
    })
    .with_max_logs(q.max_logs);
    let (mut spans, mut logs) = (0, 0);
    for (kind, body) in replayed {
        let signal = match kind {
            persist::Kind::Traces => Signal::Traces,
            persist::Kind::Logs => Signal::Logs,
        };
        match otlp_codec::decode(signal, Encoding::Protobuf, &body) {
            Ok(Batch::Traces(r)) => {
                let (s, _) = translate::spans_from_otlp(&r);
                spans += s.len();
                store.write(s);
            }
            Ok(Batch::Logs(r)) => {
                let l = translate::logs_from_otlp(&r);
                logs += l.len();
                store.write_logs(l);
            }
            Ok(Batch::Metrics(_)) => {}
            Err(e) => {
                tracing::warn!(backend = %name, error = %e, "skipping a stored batch that does not decode")
            }
        }
    }
    tracing::info!(backend = %name, path = %q.path, spans, logs, "trace store read back from disk");
    Ok(store.with_persistence(disk))
}

/// The store of a backend, for `jaeger_query` and `jaeger_storage_exporter`. The error
/// names the defined backends and the ordering rule.
pub fn find_store(host: &Host, backend: &str) -> Result<Arc<MemoryStore>, String> {
    if let Some(store) = host.extension::<MemoryStore>(backend) {
        return Ok(store);
    }
    let known = host.provided_names::<MemoryStore>();
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
            let disk = s.persistence().map(|p| p.path().display().to_string());
            tracing::info!(extension = %self.id, backend = %name, max_traces = l.max_traces, max_spans = l.max_spans, max_logs = s.max_logs(), disk = disk.as_deref().unwrap_or("none"), "trace store ready");
        }
        Ok(())
    }

    async fn shutdown(&self) {
        for store in self.stores.values() {
            if let Some(disk) = store.persistence() {
                disk.close();
            }
        }
    }
}
