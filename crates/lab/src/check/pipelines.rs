//! Module 10, collector pipelines: the learner copies the lab's gateway config to
//! `workshop/gateway.yaml`, adds an attribute to every span (`attributes` or `resource`
//! processor), drops the spans of one operation with a `filter` processor, wires both into
//! the traces pipeline and validates the file. The check runs the real `collector validate`
//! (the binary next to `lab`) and quotes its errors; it reads the file's structure with the
//! workspace's YAML parser, and asks the explorer whether the attribute is new to the lab's
//! spans and whether the filter names an operation the lab really reports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::explorer::{ApiError, Trace, TraceQuery};
use super::{Context, Criterion, Module};

pub const MODULE: Module = Module {
    id: "10",
    title: "Collector pipelines: add an attribute, drop spans, validate",
    page: "docs/workshop/10-pipelines.md",
    questions: &[],
};

/// The learner's copy, relative to the checkout.
pub const CONFIG: &str = "workshop/gateway.yaml";
/// What they copy, relative to the checkout.
pub const ORIGINAL: &str = "crates/collector/configs/local/gateway.yaml";
/// The gateway's exporter into the explorer's store: a copy of the gateway keeps it.
const EXPLORER_EXPORTER: &str = "jaeger_storage_exporter";
/// How many of `collector validate`'s lines a hint quotes.
const QUOTED_LINES: usize = 8;

/// The parts of a collector config this check reads; everything else is left to
/// `collector validate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    pub processors: BTreeMap<String, Option<serde_json::Value>>,
    pub exporters: BTreeMap<String, Option<serde_json::Value>>,
    pub service: Service,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    pub pipelines: BTreeMap<String, Option<Pipeline>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Pipeline {
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

/// One attribute action, as the `attributes` (`actions:`) and `resource` (`attributes:`)
/// processors take it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Action {
    pub key: String,
    pub value: Option<serde_json::Value>,
    pub action: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AttributesBody {
    actions: Vec<Action>,
    /// The `resource` processor's name for the same list.
    attributes: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilterBody {
    traces: FilterTraces,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilterTraces {
    span: Vec<String>,
}

/// Parses a collector config; the message is serde-saphyr's, with its line and column.
pub fn parse(text: &str) -> Result<GatewayConfig, String> {
    serde_saphyr::from_str::<GatewayConfig>(text).map_err(|e| e.to_string())
}

/// The component type of an id: `attributes` for `attributes/workshop`.
pub fn kind(id: &str) -> &str {
    id.split('/').next().unwrap_or(id).trim()
}

impl GatewayConfig {
    /// The traces pipelines (`traces`, `traces/name`), by id.
    pub fn traces_pipelines(&self) -> Vec<(&str, Pipeline)> {
        self.service
            .pipelines
            .iter()
            .filter(|(id, _)| kind(id) == "traces")
            .map(|(id, p)| (id.as_str(), p.clone().unwrap_or_default()))
            .collect()
    }

    /// Processor ids of `types` used in a traces pipeline.
    fn in_traces(&self, types: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = self
            .traces_pipelines()
            .into_iter()
            .flat_map(|(_, p)| p.processors)
            .filter(|id| types.contains(&kind(id)))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Processor ids of `types` defined under `processors:` but in no traces pipeline.
    fn defined_unused(&self, types: &[&str]) -> Vec<String> {
        let used = self.in_traces(types);
        self.processors
            .keys()
            .filter(|id| types.contains(&kind(id)) && !used.contains(id))
            .cloned()
            .collect()
    }

    fn body<T: serde::de::DeserializeOwned + Default>(&self, id: &str) -> T {
        self.processors
            .get(id)
            .cloned()
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    /// The attributes the traces pipeline adds: `insert`/`upsert` actions with a literal
    /// value, in an `attributes` or `resource` processor of a traces pipeline, with the id
    /// of that processor.
    pub fn added_attributes(&self) -> Vec<(String, Action)> {
        self.in_traces(&["attributes", "resource"])
            .into_iter()
            .flat_map(|id| {
                let body: AttributesBody = self.body(&id);
                let actions = if kind(&id) == "resource" {
                    body.attributes
                } else {
                    body.actions
                };
                actions.into_iter().map(move |a| (id.clone(), a))
            })
            .filter(|(_, a)| {
                matches!(a.action.as_deref(), Some("insert" | "upsert"))
                    && !a.key.trim().is_empty()
                    && a.value.as_ref().is_some_and(|v| !v.is_null())
            })
            .collect()
    }

    /// The span conditions of the `filter` processors in a traces pipeline.
    pub fn span_conditions(&self) -> Vec<String> {
        self.in_traces(&["filter"])
            .into_iter()
            .flat_map(|id| self.body::<FilterBody>(&id).traces.span)
            .collect()
    }
}

/// The double-quoted literals of an OTTL condition, unescaped.
fn literals(condition: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = condition.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut literal = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => literal.extend(chars.next()),
                '"' => break,
                c => literal.push(c),
            }
        }
        out.push(literal);
    }
    out
}

/// The operation of `operations` that `condition` would drop the spans of: a positive
/// comparison or match (`==`, `=~`, `IsMatch`) with a literal that is an operation's name
/// (`"GET /inventory"`) or its route (`"/inventory"`), anchors allowed. A negation
/// (`!=`, `!~`, `not`) would drop everything else, so it names nothing.
pub fn dropped_operation<'a>(condition: &str, operations: &'a [String]) -> Option<&'a str> {
    let positive = condition.contains("==") || condition.contains("=~");
    let negated = condition.contains("!=")
        || condition.contains("!~")
        || condition.split_whitespace().any(|w| w == "not");
    if !(positive || condition.contains("IsMatch(")) || negated {
        return None;
    }
    literals(condition).into_iter().find_map(|literal| {
        let literal = literal.trim_start_matches('^').trim_end_matches('$');
        operations
            .iter()
            .find(|op| {
                op.as_str() == literal
                    || op
                        .split_once(' ')
                        .is_some_and(|(_, route)| route == literal)
            })
            .map(String::as_str)
    })
}

/// `collector` beside the running `lab`, as `lab up` finds the lab's binaries.
fn collector_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find lab itself: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let collector = exe
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("collector{}", std::env::consts::EXE_SUFFIX));
    if collector.is_file() {
        Ok(collector)
    } else {
        Err(format!(
            "no collector binary at {}: build the lab with make run (or cargo build --release)",
            collector.display()
        ))
    }
}

/// `collector validate --config workshop/gateway.yaml`, run in the checkout so its messages
/// name the file as the learner does: `Ok(summary)` or `Err(its problems)`.
pub fn validate(repo: &Path) -> Result<String, String> {
    let collector = collector_binary()?;
    let out = std::process::Command::new(&collector)
        .args(["validate", "--config", CONFIG])
        .current_dir(repo)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", collector.display()))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        return Ok(said.lines().last().unwrap_or_default().trim().to_owned());
    }
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("warning:"))
        .collect();
    let mut quoted = lines
        .iter()
        .take(QUOTED_LINES)
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > QUOTED_LINES {
        quoted.push_str(&format!("\n... and {} more", lines.len() - QUOTED_LINES));
    }
    Err(quoted)
}

/// Every attribute key the lab's spans and their resources carry now (order-service's
/// checkout traces touch every workload).
fn keys_in(traces: &[Trace]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = ["service.name".to_owned()].into();
    keys.extend(traces.iter().flat_map(|t| {
        let spans = t.spans.iter().flat_map(|s| s.tags.iter().map(|g| &g.key));
        let processes = t
            .processes
            .values()
            .flat_map(|p| p.tags.iter().map(|g| &g.key));
        spans.chain(processes).cloned().collect::<Vec<_>>()
    }));
    keys
}

pub async fn criteria(ctx: &Context) -> Result<Vec<Criterion>, ApiError> {
    let mut out = Vec::new();
    let path = ctx.repo.join(CONFIG);

    let what = format!(
        "{CONFIG} is a copy of the lab's gateway (a traces pipeline from otlp to {EXPLORER_EXPORTER})"
    );
    let config = match std::fs::read_to_string(&path) {
        Err(e) => {
            out.push(Criterion::fail(
                what,
                format!(
                    "cannot read {}: {e}\nstart from the lab's own: mkdir -p workshop && cp {ORIGINAL} {CONFIG}",
                    path.display()
                ),
            ));
            None
        }
        Ok(text) => match parse(&text) {
            Err(e) => {
                out.push(Criterion::fail(
                    what,
                    format!("{CONFIG} is not YAML a collector can read: {e}"),
                ));
                None
            }
            Ok(config) => {
                let copied = config.traces_pipelines().iter().any(|(_, p)| {
                    p.receivers.iter().any(|r| kind(r) == "otlp")
                        && p.exporters.iter().any(|e| e == EXPLORER_EXPORTER)
                });
                out.push(if copied {
                    Criterion::pass(what, "")
                } else {
                    Criterion::fail(
                        what,
                        format!(
                            "no traces pipeline in {CONFIG} receives from otlp and exports to \
                             {EXPLORER_EXPORTER}: start again from the lab's own, cp {ORIGINAL} {CONFIG}"
                        ),
                    )
                });
                Some(config)
            }
        },
    };

    let what = format!("collector validate --config {CONFIG} finds no problem");
    out.push(match (&config, validate(&ctx.repo)) {
        (None, _) => Criterion::fail(what, format!("{CONFIG} first (see above)")),
        (Some(_), Ok(summary)) => Criterion::pass(what, summary),
        (Some(_), Err(problems)) => Criterion::fail(
            what,
            format!("collector validate says:\n{problems}\nfix each line at its file:line:col"),
        ),
    });
    let Some(config) = config else {
        out.push(Criterion::fail(
            "the traces pipeline adds an attribute to every span",
            format!("{CONFIG} first"),
        ));
        out.push(Criterion::fail(
            "the traces pipeline drops the spans of an operation the lab reports",
            format!("{CONFIG} first"),
        ));
        return Ok(out);
    };

    let what =
        "the traces pipeline adds an attribute to every span (attributes or resource processor)";
    let added = config.added_attributes();
    out.push(if added.is_empty() {
        let unused = config.defined_unused(&["attributes", "resource"]);
        Criterion::fail(
            what,
            if unused.is_empty() {
                "no attributes or resource processor with an insert or upsert action and a \
                 value is in a traces pipeline: define one under processors: (e.g. \
                 attributes/workshop with actions: [{key: workshop.attendee, value: <your name>, \
                 action: upsert}]) and list it in service.pipelines.traces.processors"
                    .to_owned()
            } else {
                format!(
                    "{} is defined under processors: but not listed in \
                     service.pipelines.traces.processors, or has no insert/upsert action with a \
                     value",
                    unused.join(", ")
                )
            },
        )
    } else {
        let traces = ctx
            .api
            .traces(&TraceQuery {
                service: "order-service",
                limit: 20,
                ..TraceQuery::default()
            })
            .await?;
        let existing = keys_in(&traces);
        let new: Vec<&(String, Action)> = added
            .iter()
            .filter(|(_, a)| !existing.contains(a.key.trim()))
            .collect();
        match new.first() {
            Some((id, a)) => Criterion::pass(
                what,
                format!(
                    "{id} sets {}={}",
                    a.key,
                    a.value.as_ref().map(|v| v.to_string()).unwrap_or_default()
                ),
            ),
            None => Criterion::fail(
                what,
                format!(
                    "the lab's spans already carry {}: insert leaves their value as it is and \
                     upsert would overwrite what a service said; add a key of your own, such as \
                     workshop.attendee",
                    added
                        .iter()
                        .map(|(_, a)| a.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    });

    let what =
        "the traces pipeline drops the spans of an operation the lab reports (filter processor)";
    let conditions = config.span_conditions();
    out.push(if conditions.is_empty() {
        let unused = config.defined_unused(&["filter"]);
        Criterion::fail(
            what,
            if unused.is_empty() {
                "no filter processor with traces: span: conditions is in a traces pipeline: add \
                 e.g. filter/browse with traces: {span: ['name == \"GET /inventory\"']} and list \
                 it in service.pipelines.traces.processors"
                    .to_owned()
            } else {
                format!(
                    "{} is defined under processors: but not listed in \
                     service.pipelines.traces.processors, or has no traces: span: conditions",
                    unused.join(", ")
                )
            },
        )
    } else {
        let mut operations = Vec::new();
        for service in ctx.api.services().await? {
            operations.extend(ctx.api.operations(&service).await?);
        }
        operations.sort();
        operations.dedup();
        match conditions
            .iter()
            .find_map(|c| dropped_operation(c, &operations).map(|op| (c, op)))
        {
            Some((condition, op)) => Criterion::pass(what, format!("{condition} drops {op}")),
            None => Criterion::fail(
                what,
                format!(
                    "none of the conditions ({}) names, with == or =~, an operation the explorer \
                     has seen (the services send no /healthz spans at all: UNTRACED_PATHS). \
                     Operations now: {}. Browse spans come from curl -s \
                     http://127.0.0.1:8082/inventory",
                    conditions.join("; "),
                    operations.join(", ")
                ),
            ),
        }
    });

    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(path: &str) -> String {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::read_to_string(repo.join(path)).unwrap()
    }

    #[test]
    fn the_lab_gateway_adds_nothing_and_drops_nothing() {
        let config = parse(&repo_file(ORIGINAL)).unwrap();
        let traces = config.traces_pipelines();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].1.exporters[0], EXPLORER_EXPORTER);
        assert!(config.added_attributes().is_empty());
        assert!(config.span_conditions().is_empty());
    }

    #[test]
    fn reads_added_attributes_and_filters_in_the_traces_pipeline_only() {
        let config = parse(
            r#"
processors:
  batch:
  attributes/workshop:
    actions:
      - {key: workshop.attendee, value: ada, action: upsert}
      - {key: gone, action: delete}
  resource/metrics-only:
    attributes: [{key: team, value: x, action: insert}]
  filter/browse:
    traces:
      span: ['name == "GET /inventory"']
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, attributes/workshop, filter/browse]
      exporters: [jaeger_storage_exporter]
    metrics:
      receivers: [otlp]
      processors: [resource/metrics-only]
      exporters: [prometheus]
"#,
        )
        .unwrap();
        let added = config.added_attributes();
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(added[0].0, "attributes/workshop");
        assert_eq!(added[0].1.key, "workshop.attendee");
        assert_eq!(
            config.defined_unused(&["attributes", "resource"]),
            ["resource/metrics-only"]
        );
        assert_eq!(config.span_conditions(), ["name == \"GET /inventory\""]);
    }

    #[test]
    fn a_filter_names_an_operation_by_name_or_route_never_by_negation() {
        let ops: Vec<String> = ["GET /inventory", "POST /orders", "inventory.reserve_stock"]
            .map(String::from)
            .to_vec();
        for (condition, expected) in [
            (r#"name == "GET /inventory""#, Some("GET /inventory")),
            (
                r#"attributes["http.route"] == "/inventory""#,
                Some("GET /inventory"),
            ),
            (r#"name =~ "^GET /inventory$""#, Some("GET /inventory")),
            (
                r#"IsMatch(name, "inventory.reserve_stock")"#,
                Some("inventory.reserve_stock"),
            ),
            (r#"name == "GET /healthz""#, None),
            (r#"name != "GET /inventory""#, None),
            (r#"not (name == "GET /inventory")"#, None),
            (r#"name == "GET""#, None),
        ] {
            assert_eq!(dropped_operation(condition, &ops), expected, "{condition}");
        }
    }

    #[test]
    fn literals_unescape() {
        assert_eq!(
            literals(r#"attributes["a"] == "x \"y\"""#),
            ["a", "x \"y\""]
        );
    }
}
