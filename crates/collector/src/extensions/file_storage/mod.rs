//! The `file_storage` extension (the Go collector-contrib's filestorage extension): a
//! directory where exporters keep their persistent sending queues
//! (`sending_queue: {storage: file_storage}`), one subdirectory per exporter and signal.
//!
//! fsync policy: by default a batch is written to the file (`write(2)`) before it is
//! acknowledged, which survives the collector being killed (SIGKILL, OOM, crash) because
//! the kernel still holds the data. `fsync: true` also flushes it to the disk before the
//! acknowledgement, which survives power loss, at the cost of one disk flush per batch.

use crate::component::{BuildContext, Extension};
use crate::config::GoDuration;
use crate::pdata::Signal;
use crate::registry::{self, ComponentConfig, Decoded, ExtensionFactory};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

pub const FACTORY: ExtensionFactory = ExtensionFactory {
    kind: "file_storage",
    description: "A directory for persistent sending queues that survive restarts and SIGKILL",
    validate: registry::validate::<FileStorageConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileStorageConfig {
    /// Directory for the queues (required).
    pub directory: String,
    /// Create the directory when missing. Default true (the Go extension's default is false).
    pub create_directory: bool,
    /// Flush every batch to the disk before acknowledging it. Default false; see above.
    pub fsync: bool,
    /// Accepted for compatibility with Go configs.
    pub timeout: Option<GoDuration>,
}

impl Default for FileStorageConfig {
    fn default() -> Self {
        FileStorageConfig {
            directory: String::new(),
            create_directory: true,
            fsync: false,
            timeout: None,
        }
    }
}

impl ComponentConfig for FileStorageConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        if self.directory.is_empty() {
            return vec![(
                "",
                "directory is required (where the persistent queues live)".into(),
            )];
        }
        if !self.create_directory && !std::path::Path::new(&self.directory).is_dir() {
            return vec![(
                "directory",
                format!(
                    "\"{}\" does not exist (or set create_directory: true)",
                    self.directory
                ),
            )];
        }
        Vec::new()
    }
}

/// What exporters find in the host under this extension's id.
pub struct FileStorage {
    pub directory: PathBuf,
    pub fsync: bool,
}

impl FileStorage {
    /// The queue directory of one exporter for one signal.
    pub fn queue_dir(&self, exporter: &str, signal: Signal) -> PathBuf {
        let safe: String = exporter
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.directory.join(format!("{safe}__{signal}"))
    }
}

struct FileStorageExtension;

#[async_trait]
impl Extension for FileStorageExtension {
    async fn start(&self) -> anyhow::Result<()> {
        Ok(())
    }
    async fn shutdown(&self) {}
}

fn build(decoded: &Decoded, ctx: BuildContext) -> anyhow::Result<Arc<dyn Extension>> {
    let cfg: FileStorageConfig = registry::typed::<FileStorageConfig>(decoded).clone();
    let directory = PathBuf::from(&cfg.directory);
    if cfg.create_directory {
        std::fs::create_dir_all(&directory).map_err(|e| {
            anyhow::anyhow!(
                "extensions::{}: cannot create {}: {e}",
                ctx.id,
                directory.display()
            )
        })?;
    }
    let storage = Arc::new(FileStorage {
        directory,
        fsync: cfg.fsync,
    });
    ctx.host
        .provide(&ctx.id.to_string(), storage)
        .map_err(anyhow::Error::msg)?;
    Ok(Arc::new(FileStorageExtension))
}
