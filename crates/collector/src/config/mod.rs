//! Reading the Go collector's YAML: files merged in order, `${env:...}` expanded, every
//! component id and pipeline parsed, and every problem reported with its key path and
//! `file:line:column` — all of them, not only the first.

mod decode;
pub mod endpoint;
mod load;
mod node;
mod subst;
pub mod tls;
mod types;

pub use decode::decode;
pub use load::{load_files, load_str};
pub use node::{Key, Loc, Node, Value};
pub use subst::expand_str;
pub use types::{GoDuration, parse_go_duration};

use crate::pdata::Signal;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// One problem in the configuration, pointing at the place to fix.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub loc: Option<Loc>,
    /// Key path as the Go collector writes it: `receivers::otlp::protocols::grpc`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Errors and warnings collected while reading and validating a config.
#[derive(Debug, Default)]
pub struct Errors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl Errors {
    pub fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }
    pub fn error(&mut self, loc: Option<Loc>, path: impl Into<String>, msg: impl Into<String>) {
        self.errors.push(ConfigError {
            loc,
            path: path.into(),
            message: msg.into(),
        });
    }
    pub fn warn(&mut self, loc: Option<Loc>, path: impl Into<String>, msg: impl Into<String>) {
        self.warnings.push(ConfigError {
            loc,
            path: path.into(),
            message: msg.into(),
        });
    }
    pub fn extend(&mut self, errs: impl IntoIterator<Item = ConfigError>) {
        self.errors.extend(errs);
    }
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// `type[/name]`, as in `otlp/jaeger`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    pub kind: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn parse(s: &str) -> Result<ComponentId, String> {
        let (kind, name) = match s.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (s, None),
        };
        let valid_type = kind.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_type {
            return Err(format!(
                "invalid component id \"{s}\": the type must start with a letter and use only letters, digits and _"
            ));
        }
        if let Some(n) = name
            && (n.is_empty() || n.chars().any(|c| c.is_whitespace() || c == '/'))
        {
            return Err(format!(
                "invalid component id \"{s}\": the name after / must be non-empty, without spaces or /"
            ));
        }
        Ok(ComponentId {
            kind: kind.to_string(),
            name: name.map(str::to_string),
        })
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{n}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

/// The five component sections of the YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Receivers,
    Processors,
    Exporters,
    Connectors,
    Extensions,
}

impl Section {
    pub const ALL: [Section; 5] = [
        Section::Receivers,
        Section::Processors,
        Section::Exporters,
        Section::Connectors,
        Section::Extensions,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Section::Receivers => "receivers",
            Section::Processors => "processors",
            Section::Exporters => "exporters",
            Section::Connectors => "connectors",
            Section::Extensions => "extensions",
        }
    }
    /// "receiver", "processor", ...
    pub fn singular(self) -> &'static str {
        let k = self.key();
        &k[..k.len() - 1]
    }
}

/// A component as defined in its section.
#[derive(Clone, Debug)]
pub struct ComponentDef {
    pub id: ComponentId,
    pub key_loc: Loc,
    pub node: Node,
    /// The config as its factory's `validate` decoded it (`registry::decoded`).
    pub decoded: std::sync::OnceLock<crate::registry::Decoded>,
}

/// A reference to a component from `service` (a pipeline list or `service.extensions`).
#[derive(Clone, Debug)]
pub struct ComponentRef {
    pub id: ComponentId,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct PipelineDef {
    pub signal: Signal,
    pub name: String,
    pub loc: Loc,
    pub receivers: Vec<ComponentRef>,
    pub processors: Vec<ComponentRef>,
    pub exporters: Vec<ComponentRef>,
}

/// `service.telemetry`: where the collector's own metrics are served, and its log level.
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub metrics: TelemetryMetrics,
    pub logs: TelemetryLogs,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryMetrics {
    /// Address of the Prometheus endpoint with the collector's own metrics. Default
    /// 127.0.0.1:8888; `level: none` turns it off.
    pub address: String,
    /// none | basic | normal | detailed. Anything but none serves every metric.
    pub level: String,
}

impl Default for TelemetryMetrics {
    fn default() -> Self {
        TelemetryMetrics {
            address: "127.0.0.1:8888".into(),
            level: "normal".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryLogs {
    /// debug | info | warn | error; `--log-level` and RUST_LOG win over it.
    pub level: Option<String>,
}

/// The whole configuration, read but not yet checked against the component registry.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub receivers: Vec<ComponentDef>,
    pub processors: Vec<ComponentDef>,
    pub exporters: Vec<ComponentDef>,
    pub connectors: Vec<ComponentDef>,
    pub extensions: Vec<ComponentDef>,
    pub service_extensions: Vec<ComponentRef>,
    pub pipelines: Vec<PipelineDef>,
    pub telemetry: TelemetryConfig,
}

impl Config {
    pub fn section(&self, s: Section) -> &[ComponentDef] {
        match s {
            Section::Receivers => &self.receivers,
            Section::Processors => &self.processors,
            Section::Exporters => &self.exporters,
            Section::Connectors => &self.connectors,
            Section::Extensions => &self.extensions,
        }
    }
    fn section_mut(&mut self, s: Section) -> &mut Vec<ComponentDef> {
        match s {
            Section::Receivers => &mut self.receivers,
            Section::Processors => &mut self.processors,
            Section::Exporters => &mut self.exporters,
            Section::Connectors => &mut self.connectors,
            Section::Extensions => &mut self.extensions,
        }
    }
    pub fn find(&self, s: Section, id: &ComponentId) -> Option<&ComponentDef> {
        self.section(s).iter().find(|d| &d.id == id)
    }
}

impl PipelineDef {
    pub fn id(&self) -> String {
        if self.name.is_empty() {
            self.signal.to_string()
        } else {
            format!("{}/{}", self.signal, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        timeout: GoDuration,
        send_batch_size: u32,
        endpoint: String,
    }

    #[test]
    fn decode_reports_every_unknown_key_and_type_errors_with_positions() {
        let n = Node::parse(
            "f.yaml",
            "timeout: 5x\nbogus: 1\nsend_batch_size: 10\nother: 2\n",
        )
        .unwrap();
        let mut errs = Errors::default();
        let r: Option<Sample> = decode(&n, "processors::batch", &mut errs);
        assert!(r.is_none());
        let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "f.yaml:2:1: processors::batch::bogus: unknown key \"bogus\"; valid keys here: timeout, send_batch_size, endpoint",
                "f.yaml:4:1: processors::batch::other: unknown key \"other\"; valid keys here: timeout, send_batch_size, endpoint",
                "f.yaml:1:10: processors::batch::timeout: invalid duration \"5x\": use a number with a unit (ns, us, ms, s, m, h), e.g. 200ms, 10s, 1m30s",
            ]
        );
    }

    #[test]
    fn decode_reads_substituted_strings_as_numbers_and_null_as_defaults() {
        let n = Node::parse("f.yaml", "send_batch_size: \"512\"\ntimeout: 1s\n").unwrap();
        let mut errs = Errors::default();
        let s: Sample = decode(&n, "p", &mut errs).unwrap();
        assert_eq!(s.send_batch_size, 512);
        let null = Node::parse("f.yaml", "x:\n").unwrap();
        let d: Sample = decode(null.get("x").unwrap(), "p", &mut errs).unwrap();
        assert_eq!(d, Sample::default());
    }

    #[test]
    fn pipelines_and_ids_are_checked() {
        let text = "receivers:\n  otlp/a b:\nservice:\n  pipelines:\n    spans:\n      receivers: [x]\n    traces:\n      receivers: [otlp, otlp]\n";
        let mut errs = Errors::default();
        load_str("c.yaml", text, &mut errs);
        let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with("c.yaml:2:3: receivers::otlp/a b: invalid component id"),
            "{msgs:?}"
        );
        assert!(
            msgs[1]
                .contains("c.yaml:5:5: service::pipelines::spans: unknown pipeline type \"spans\""),
            "{msgs:?}"
        );
        assert!(
            msgs[2].contains(
                "c.yaml:8:25: service::pipelines::traces::receivers: \"otlp\" is listed twice"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[3].contains(
                "c.yaml:7:5: service::pipelines::traces: a pipeline needs at least one exporter"
            ),
            "{msgs:?}"
        );
    }
}
