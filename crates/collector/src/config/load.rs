//! Reading config files into a [`Config`]: merged in order, `${env:...}` expanded, the
//! sections, component ids, `service.extensions` and pipelines parsed, every problem
//! reported with its place.

use super::*;

/// Reads, merges and expands the given files, then parses the structure of the document.
pub fn load_files(paths: &[impl AsRef<Path>], errors: &mut Errors) -> Option<Config> {
    let mut root: Option<Node> = None;
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                errors.error(None, "", format!("cannot read config file {name}: {e}"));
                continue;
            }
        };
        match Node::parse(&name, &text) {
            Ok(n) => match &mut root {
                Some(r) => r.merge(n),
                None => root = Some(n),
            },
            Err((loc, msg)) => errors.error(loc, "", format!("invalid YAML: {msg}")),
        }
    }
    let mut root = root?;
    if !errors.is_ok() {
        return None;
    }
    subst::expand(&mut root, &|v| std::env::var(v).ok(), errors);
    Some(parse_document(&root, errors))
}

/// Reads one YAML text (for tests and `validate` on stdin-like input).
pub fn load_str(name: &str, text: &str, errors: &mut Errors) -> Option<Config> {
    let mut root = match Node::parse(name, text) {
        Ok(n) => n,
        Err((loc, msg)) => {
            errors.error(loc, "", format!("invalid YAML: {msg}"));
            return None;
        }
    };
    subst::expand(&mut root, &|v| std::env::var(v).ok(), errors);
    Some(parse_document(&root, errors))
}

fn parse_document(root: &Node, errors: &mut Errors) -> Config {
    let mut cfg = Config::default();
    let Value::Map(entries) = &root.value else {
        errors.error(
            Some(root.loc.clone()),
            "",
            format!("the config must be a mapping, found {}", root.kind()),
        );
        return cfg;
    };
    for (key, node) in entries {
        if let Some(section) = Section::ALL.iter().find(|s| s.key() == key.name) {
            parse_section(*section, node, &mut cfg, errors);
        } else if key.name == "service" {
            parse_service(node, &mut cfg, errors);
        } else {
            errors.error(
                Some(key.loc.clone()),
                key.name.clone(),
                "unknown top-level key; valid keys: receivers, processors, exporters, connectors, extensions, service",
            );
        }
    }
    cfg
}

fn parse_section(section: Section, node: &Node, cfg: &mut Config, errors: &mut Errors) {
    match &node.value {
        Value::Null => {}
        Value::Map(entries) => {
            for (key, n) in entries {
                match ComponentId::parse(&key.name) {
                    Ok(id) => cfg.section_mut(section).push(ComponentDef {
                        id,
                        key_loc: key.loc.clone(),
                        node: n.clone(),
                        decoded: std::sync::OnceLock::new(),
                    }),
                    Err(msg) => errors.error(
                        Some(key.loc.clone()),
                        format!("{}::{}", section.key(), key.name),
                        msg,
                    ),
                }
            }
        }
        _ => errors.error(
            Some(node.loc.clone()),
            section.key(),
            format!("expected a mapping of component ids, found {}", node.kind()),
        ),
    }
}

fn parse_refs(node: &Node, path: &str, errors: &mut Errors) -> Vec<ComponentRef> {
    let items = match &node.value {
        Value::Seq(items) => items,
        Value::Null => return Vec::new(),
        _ => {
            errors.error(
                Some(node.loc.clone()),
                path,
                format!("expected a list of component ids, found {}", node.kind()),
            );
            return Vec::new();
        }
    };
    let mut refs = Vec::new();
    for item in items {
        let Some(text) = item.scalar_text() else {
            errors.error(
                Some(item.loc.clone()),
                path,
                format!("expected a component id, found {}", item.kind()),
            );
            continue;
        };
        match ComponentId::parse(&text) {
            Ok(id) => {
                if refs.iter().any(|r: &ComponentRef| r.id == id) {
                    errors.error(
                        Some(item.loc.clone()),
                        path,
                        format!("\"{id}\" is listed twice"),
                    );
                } else {
                    refs.push(ComponentRef {
                        id,
                        loc: item.loc.clone(),
                    });
                }
            }
            Err(msg) => errors.error(Some(item.loc.clone()), path, msg),
        }
    }
    refs
}

fn parse_service(node: &Node, cfg: &mut Config, errors: &mut Errors) {
    let Value::Map(entries) = &node.value else {
        errors.error(
            Some(node.loc.clone()),
            "service",
            format!("expected a mapping, found {}", node.kind()),
        );
        return;
    };
    for (key, n) in entries {
        match key.name.as_str() {
            "extensions" => {
                cfg.service_extensions = parse_refs(n, "service::extensions", errors);
            }
            "telemetry" => {
                if let Some(t) = decode::<TelemetryConfig>(n, "service::telemetry", errors) {
                    cfg.telemetry = t;
                }
            }
            "pipelines" => parse_pipelines(n, cfg, errors),
            other => errors.error(
                Some(key.loc.clone()),
                format!("service::{other}"),
                "unknown key; valid keys here: extensions, pipelines, telemetry",
            ),
        }
    }
}

fn parse_pipelines(node: &Node, cfg: &mut Config, errors: &mut Errors) {
    let Value::Map(entries) = &node.value else {
        errors.error(
            Some(node.loc.clone()),
            "service::pipelines",
            format!("expected a mapping of pipelines, found {}", node.kind()),
        );
        return;
    };
    for (key, n) in entries {
        let path = format!("service::pipelines::{}", key.name);
        let (signal_text, name) = match key.name.split_once('/') {
            Some((s, name)) => (s, name.to_string()),
            None => (key.name.as_str(), String::new()),
        };
        let Some(signal) = Signal::parse(signal_text) else {
            errors.error(
                Some(key.loc.clone()),
                path,
                format!(
                    "unknown pipeline type \"{signal_text}\"; a pipeline id is traces, metrics or logs, optionally followed by /name"
                ),
            );
            continue;
        };
        let mut p = PipelineDef {
            signal,
            name,
            loc: key.loc.clone(),
            receivers: Vec::new(),
            processors: Vec::new(),
            exporters: Vec::new(),
        };
        for (k, list) in n.entries() {
            let list_path = format!("{path}::{}", k.name);
            match k.name.as_str() {
                "receivers" => p.receivers = parse_refs(list, &list_path, errors),
                "processors" => p.processors = parse_refs(list, &list_path, errors),
                "exporters" => p.exporters = parse_refs(list, &list_path, errors),
                _ => errors.error(
                    Some(k.loc.clone()),
                    list_path,
                    "unknown key; valid keys here: receivers, processors, exporters",
                ),
            }
        }
        if !matches!(n.value, Value::Map(_)) {
            errors.error(
                Some(n.loc.clone()),
                path.clone(),
                "expected a mapping with receivers, processors and exporters",
            );
        } else {
            if p.receivers.is_empty() {
                errors.error(
                    Some(key.loc.clone()),
                    path.clone(),
                    "a pipeline needs at least one receiver",
                );
            }
            if p.exporters.is_empty() {
                errors.error(
                    Some(key.loc.clone()),
                    path.clone(),
                    "a pipeline needs at least one exporter",
                );
            }
        }
        cfg.pipelines.push(p);
    }
}
