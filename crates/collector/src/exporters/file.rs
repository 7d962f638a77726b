//! The `file` exporter (the Go collector's fileexporter): one OTLP/JSON export request per
//! line, appended to `path`, with optional size-based rotation.

use crate::component::{BuildContext, ConsumeError, Consumer, SharedConsumer};
use crate::otlp_codec;
use crate::pdata::{Batch, Signal};
use crate::registry::{self, ComponentConfig, Decoded, ExporterFactory};
use anyhow::Context;
use async_trait::async_trait;
use serde::Deserialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub const FACTORY: ExporterFactory = ExporterFactory {
    kind: "file",
    aliases: &[],
    description: "Appends telemetry to a file as OTLP/JSON lines, with rotation",
    signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
    validate: registry::validate::<FileConfig>,
    build,
};

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// File to append to (required).
    pub path: String,
    /// Rotate when the file grows past max_megabytes; keep max_backups old files.
    pub rotation: Option<RotationConfig>,
    /// Go's interval between flushes of its write buffer. Accepted and ignored (with a
    /// warning): each batch is written to the file as it arrives, with nothing buffered.
    pub flush_interval: Option<crate::config::GoDuration>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationConfig {
    /// Size in MiB at which the file is rotated. Default 100.
    pub max_megabytes: u64,
    /// Rotated files kept (path.1, path.2, ...). Default 100.
    pub max_backups: u32,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            max_megabytes: 100,
            max_backups: 100,
        }
    }
}

impl ComponentConfig for FileConfig {
    fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.path.is_empty() {
            v.push(("", "path is required".into()));
        }
        if let Some(r) = &self.rotation
            && r.max_megabytes == 0
        {
            v.push(("rotation", "max_megabytes must be at least 1".into()));
        }
        v
    }

    fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        vec![(
            "flush_interval",
            "each batch is written to the file as it arrives; nothing is buffered to flush",
        )]
    }
}

fn build(decoded: &Decoded, _ctx: BuildContext, _signal: Signal) -> anyhow::Result<SharedConsumer> {
    let cfg: FileConfig = registry::typed::<FileConfig>(decoded).clone();
    let path = PathBuf::from(&cfg.path);
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = open(&path)?;
    Ok(Arc::new(FileExporter {
        path,
        rotation: cfg.rotation,
        file: Mutex::new(file),
    }))
}

fn open(path: &PathBuf) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

struct FileExporter {
    path: PathBuf,
    rotation: Option<RotationConfig>,
    file: Mutex<std::fs::File>,
}

impl FileExporter {
    fn write(&self, line: &str) -> std::io::Result<()> {
        let mut f = self.file.lock().expect("file lock");
        if let Some(r) = &self.rotation
            && f.metadata()?.len() + line.len() as u64 > r.max_megabytes * 1024 * 1024
        {
            for i in (1..r.max_backups).rev() {
                let from = backup(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, backup(&self.path, i + 1))?;
                }
            }
            if r.max_backups > 0 {
                std::fs::rename(&self.path, backup(&self.path, 1))?;
            }
            *f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?;
        }
        f.write_all(line.as_bytes())?;
        f.flush()
    }
}

fn backup(path: &std::path::Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

#[async_trait]
impl Consumer for FileExporter {
    async fn consume(&self, batch: Batch) -> Result<(), ConsumeError> {
        self.consume_shared(&batch).await
    }

    fn mutates_data(&self) -> bool {
        false
    }

    async fn consume_shared(&self, batch: &Batch) -> Result<(), ConsumeError> {
        let mut line = otlp_codec::encode_json(batch);
        line.push('\n');
        self.write(&line).map_err(|e| {
            ConsumeError::retryable(format!("cannot write {}: {e}", self.path.display()))
        })
    }
}
