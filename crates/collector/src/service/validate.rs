//! Checking a config before anything is built: unknown types, every component's settings,
//! pipeline references, signals a component cannot handle, unused components, and
//! acknowledgements a persistent queue cannot keep.

use crate::config::{ComponentId, Config, Errors, Section};
use crate::pdata::Signal;
use crate::registry;
use std::collections::{BTreeMap, BTreeSet};

/// Checks the config against the component registry: unknown types, component configs,
/// pipeline references and signals. Adds every problem to `errors` and warns about
/// components that are defined but unused.
pub fn validate(cfg: &Config, errors: &mut Errors) {
    for section in Section::ALL {
        check_section(cfg, section, errors);
    }

    for r in &cfg.service_extensions {
        if cfg.find(Section::Extensions, &r.id).is_none() {
            errors.error(
                Some(r.loc.clone()),
                "service::extensions",
                format!(
                    "extension \"{}\" is not defined in the extensions section",
                    r.id
                ),
            );
        }
    }

    if cfg.pipelines.is_empty() {
        errors.error(
            None,
            "service::pipelines",
            "no pipelines are configured: the collector would do nothing",
        );
    }
    let mut used: BTreeSet<(Section, ComponentId)> = BTreeSet::new();
    let mut connector_sides: BTreeMap<ComponentId, (bool, bool)> = BTreeMap::new();
    for p in &cfg.pipelines {
        let base = format!("service::pipelines::{}", p.id());
        let roles = [
            (&p.receivers, Section::Receivers),
            (&p.processors, Section::Processors),
            (&p.exporters, Section::Exporters),
        ];
        for (refs, own) in roles {
            let path = format!("{base}::{}", own.key());
            // Connectors stand where receivers and exporters do, never among processors.
            let with_connectors = own != Section::Processors;
            for r in refs {
                let (section, problem) = if let Some(d) = cfg.find(own, &r.id) {
                    let ok = supports(own, &d.id.kind, p.signal);
                    let problem = format!(
                        "{} \"{}\" does not support {}",
                        own.singular(),
                        r.id,
                        p.signal
                    );
                    (own, (!ok).then_some(problem))
                } else if with_connectors && let Some(d) = cfg.find(Section::Connectors, &r.id) {
                    let consumes = own == Section::Exporters;
                    let sides = connector_sides.entry(r.id.clone()).or_default();
                    if consumes {
                        sides.0 = true;
                    } else {
                        sides.1 = true;
                    }
                    let ok = connector_handles(&d.id.kind, p.signal, consumes);
                    let verb = if consumes { "consume" } else { "produce" };
                    let problem = format!("connector \"{}\" cannot {verb} {}", r.id, p.signal);
                    (Section::Connectors, (!ok).then_some(problem))
                } else {
                    let sections: &[Section] = if with_connectors {
                        &[own, Section::Connectors]
                    } else {
                        &[own]
                    };
                    errors.error(
                        Some(r.loc.clone()),
                        path.clone(),
                        undefined(own.singular(), &r.id, cfg, sections),
                    );
                    continue;
                };
                used.insert((section, r.id.clone()));
                if let Some(msg) = problem {
                    errors.error(Some(r.loc.clone()), path.clone(), msg);
                }
            }
        }
    }
    warn_about_unsafe_acknowledgements(cfg, errors);
    for (id, (as_exporter, as_receiver)) in &connector_sides {
        if as_exporter != as_receiver {
            let d = cfg
                .find(Section::Connectors, id)
                .expect("connector defined");
            errors.error(
                Some(d.key_loc.clone()),
                format!("connectors::{id}"),
                if *as_exporter {
                    "the connector is used as an exporter but no pipeline lists it as a receiver"
                } else {
                    "the connector is used as a receiver but no pipeline lists it as an exporter"
                },
            );
        }
    }
    for s in [
        Section::Receivers,
        Section::Processors,
        Section::Exporters,
        Section::Connectors,
    ] {
        for d in cfg.section(s) {
            if !used.contains(&(s, d.id.clone())) {
                errors.warn(
                    Some(d.key_loc.clone()),
                    format!("{}::{}", s.key(), d.id),
                    format!(
                        "{} \"{}\" is defined but not used in any pipeline",
                        s.singular(),
                        d.id
                    ),
                );
            }
        }
    }
    for d in &cfg.extensions {
        if !cfg.service_extensions.iter().any(|r| r.id == d.id) {
            errors.warn(
                Some(d.key_loc.clone()),
                format!("extensions::{}", d.id),
                format!(
                    "extension \"{}\" is defined but not enabled in service::extensions",
                    d.id
                ),
            );
        }
    }
}

/// A persistent queue only keeps what reaches it: a batch processor that acknowledges on
/// receipt can still lose acknowledged data in a crash.
fn warn_about_unsafe_acknowledgements(cfg: &Config, errors: &mut Errors) {
    for p in &cfg.pipelines {
        let durable = p
            .exporters
            .iter()
            .filter_map(|r| cfg.find(Section::Exporters, &r.id))
            .any(|d| {
                d.node
                    .get("sending_queue")
                    .and_then(|q| q.get("storage"))
                    .is_some_and(|s| !s.is_null())
            });
        if !durable {
            continue;
        }
        for r in &p.processors {
            let Some(d) = cfg.find(Section::Processors, &r.id) else {
                continue;
            };
            let waits = d.node.get("wait_for_result").is_some_and(|n| {
                matches!(n.value, crate::config::Value::Bool(true))
                    || n.scalar_text().as_deref() == Some("true")
            });
            if d.id.kind == "batch" && !waits {
                errors.warn(
                    Some(r.loc.clone()),
                    format!("service::pipelines::{}::processors", p.id()),
                    format!("\"{}\" acknowledges data before it reaches the persistent queue, so a crash can lose acknowledged data; set wait_for_result: true on it", r.id),
                );
            }
        }
    }
}

/// Whether a component type can sit in a pipeline of `signal` (unknown types are reported
/// elsewhere, so they pass here).
fn supports(section: Section, kind: &str, signal: Signal) -> bool {
    let signals = match section {
        Section::Receivers => registry::find_receiver(kind).map(|f| f.signals),
        Section::Processors => registry::find_processor(kind).map(|f| f.signals),
        Section::Exporters => registry::find_exporter(kind).map(|f| f.signals),
        Section::Connectors | Section::Extensions => None,
    };
    signals.is_none_or(|s| s.contains(&signal))
}

/// Whether a connector type consumes (at the end of a pipeline) or produces (at its start)
/// `signal`.
fn connector_handles(kind: &str, signal: Signal, consumes: bool) -> bool {
    registry::find_connector(kind).is_none_or(|f| {
        f.pairs.iter().any(|(from, to)| {
            if consumes {
                *from == signal
            } else {
                *to == signal
            }
        })
    })
}

fn undefined(what: &str, id: &ComponentId, cfg: &Config, sections: &[Section]) -> String {
    let defined: Vec<String> = sections
        .iter()
        .flat_map(|s| cfg.section(*s).iter().map(|d| d.id.to_string()))
        .collect();
    let hint = if defined.is_empty() {
        "none are defined".to_string()
    } else {
        format!("defined: {}", defined.join(", "))
    };
    format!("{what} \"{id}\" is not defined ({hint})")
}

fn check_section(cfg: &Config, section: Section, errors: &mut Errors) {
    for d in cfg.section(section) {
        let path = format!("{}::{}", section.key(), d.id);
        match registry::validator(section, &d.id.kind) {
            Ok(validate) => {
                let before = errors.errors.len();
                if let Some(decoded) = validate(&d.node, &path, errors)
                    && errors.errors.len() == before
                {
                    let _ = d.decoded.set(decoded);
                }
            }
            Err(known) => errors.error(
                Some(d.key_loc.clone()),
                path,
                format!(
                    "unknown {} type \"{}\"; known {} types: {}",
                    section.singular(),
                    d.id.kind,
                    section.singular(),
                    known.join(", ")
                ),
            ),
        }
    }
}
