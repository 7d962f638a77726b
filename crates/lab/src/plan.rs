//! From the process table to the list of [`Launch`]es, after the checks that must pass before
//! anything starts: every port free, every binary built, every config file present. Optional
//! tools that are missing, unconfigured or whose port is taken are left out with a note.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use crate::layout::{Layout, Placeholders};
use crate::processes::{ProcessSpec, Program};
use crate::supervisor::Launch;

/// Exporter settings a user's shell may hold that would bypass the lab's telemetry paths
/// (a per-signal endpoint wins over OTEL_EXPORTER_OTLP_ENDPOINT).
const OVERRIDES_REMOVED: &[&str] = &[
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
];

/// What `lab up` will run, in start order.
#[derive(Debug, Default)]
pub struct Plan {
    pub launches: Vec<Launch>,
    /// Optional processes left out, and why (with the hint to get them).
    pub notes: Vec<String>,
}

impl Plan {
    /// Workshop mode (`lab up --workshop`, `make workshop`): each workload starts with its
    /// planted problems switched on through `FAULT_SCENARIOS` (the table of
    /// [`crate::fault::WORKLOADS`]); `lab fault` switches them off one by one at run time.
    /// Without it a workload starts with no scenario, whatever the user's shell holds.
    pub fn plant_problems(&mut self, workshop: bool) {
        for launch in &mut self.launches {
            let Some(scenarios) = crate::fault::planted_scenarios(&launch.name) else {
                continue;
            };
            launch.env.retain(|(key, _)| key != "FAULT_SCENARIOS");
            if workshop {
                launch.env.push(("FAULT_SCENARIOS".into(), scenarios));
            } else {
                launch.env_remove.push("FAULT_SCENARIOS".into());
            }
        }
    }

    /// Runs the gateway collector with `config` instead of the lab's own (`lab up
    /// --gateway-config`, `make workshop GATEWAY=...`): the workshop's modules on backends and
    /// sampling change the learner's copy, never the lab's file. The file must exist and
    /// pass the collector's own `validate` when the gateway starts.
    pub fn use_gateway_config(&mut self, config: &std::path::Path) -> Result<(), PreflightError> {
        if !config.is_file() {
            return Err(PreflightError {
                problems: vec![format!(
                    "--gateway-config {}: no such file",
                    config.display()
                )],
            });
        }
        for launch in self.launches.iter_mut().filter(|l| l.name == GATEWAY) {
            if let Some(i) = launch.args.iter().position(|a| a == "--config") {
                launch.args[i + 1] = config.display().to_string();
            }
        }
        Ok(())
    }
}

/// The process whose config `--gateway-config` replaces.
const GATEWAY: &str = "collector-gateway";

/// Everything that stops `lab up` before it starts anything, listed together.
#[derive(Debug, thiserror::Error)]
#[error("lab up cannot start:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct PreflightError {
    pub problems: Vec<String>,
}

/// Selects the processes (all, or those named in `only`), checks them, and fills in the
/// placeholders. `colour` says whether children may write colour codes.
pub fn plan(
    specs: &[ProcessSpec],
    only: &[String],
    layout: &Layout,
    colour: bool,
) -> Result<Plan, PreflightError> {
    plan_with(specs, only, layout, colour, &port_is_free)
}

/// [`plan`], asking `port_is_free` about ports.
pub fn plan_with(
    specs: &[ProcessSpec],
    only: &[String],
    layout: &Layout,
    colour: bool,
    port_is_free: &dyn Fn(u16) -> bool,
) -> Result<Plan, PreflightError> {
    let values = Placeholders::new(layout);
    let mut plan = Plan::default();
    let mut problems = Vec::new();
    let mut missing_binaries: Vec<PathBuf> = Vec::new();

    for name in only {
        if !specs.iter().any(|s| s.name == name) {
            problems.push(format!(
                "--only {name}: no such process (there are: {})",
                specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            ));
        }
    }

    for spec in specs
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name))
    {
        let optional = matches!(spec.program, Program::Optional { .. });
        let program = match spec.program {
            Program::Workspace(binary) => {
                let path = layout.bin.join(binary);
                if !path.is_file() && !missing_binaries.contains(&path) {
                    missing_binaries.push(path.clone());
                }
                path
            }
            Program::Optional { name, install_hint } => match find_on_path(name) {
                Some(path) => path,
                None => {
                    plan.notes.push(install_hint.to_owned());
                    continue;
                }
            },
        };

        let missing: Vec<String> = spec
            .needs
            .iter()
            .map(|need| values.expand(need))
            .filter(|need| !layout.repo.join(need).exists())
            .collect();
        if !missing.is_empty() {
            if optional {
                plan.notes.push(format!(
                    "{}: not started, {} does not exist yet",
                    spec.name,
                    missing.join(" and ")
                ));
                continue;
            }
            for path in missing {
                problems.push(format!("{path} (needed by {}) does not exist", spec.name));
            }
        }

        let taken: Vec<u16> = spec
            .ports
            .iter()
            .map(|p| p.number)
            .filter(|&p| !port_is_free(p))
            .collect();
        if !taken.is_empty() {
            if optional {
                plan.notes.push(format!(
                    "{}: not started, port {} is already in use (find what holds it with \
                     `ss -ltnp 'sport = :{}'`)",
                    spec.name,
                    join_ports(&taken),
                    taken[0]
                ));
                continue;
            }
            for port in taken {
                problems.push(port_in_use(port, spec.name));
            }
        }

        plan.launches
            .push(launch(spec, program, layout, &values, colour));
    }

    for path in missing_binaries {
        problems.push(format!(
            "{} is not built — `cargo build --release --workspace --bins` builds it \
             (or point --bin-dir at the directory holding the binaries)",
            path.display()
        ));
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(PreflightError { problems })
    }
}

/// The refusal for a taken port, with how to find who holds it.
pub fn port_in_use(port: u16, process: &str) -> String {
    format!(
        "port {port} ({process}) is already in use — is another lab running? find it with \
         `ss -ltnp 'sport = :{port}'`"
    )
}

/// Whether the lab could bind 127.0.0.1:`port` now. (A listener on 0.0.0.0 or [::] holding
/// the port counts as taken, as it would for the process.)
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn launch(
    spec: &ProcessSpec,
    program: PathBuf,
    layout: &Layout,
    values: &Placeholders,
    colour: bool,
) -> Launch {
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), values.expand(v)))
        .collect();
    let mut env_remove = Vec::new();
    if let Program::Workspace(_) = spec.program {
        // A RUST_LOG of the user's (`RUST_LOG=debug make run`) reaches every process.
        if std::env::var_os("RUST_LOG").is_none() {
            env.push(("RUST_LOG".into(), "info".into()));
        }
        env_remove.extend(OVERRIDES_REMOVED.iter().map(|k| (*k).to_owned()));
    }
    if !colour {
        env.push(("NO_COLOR".into(), "1".into()));
    }
    Launch {
        name: spec.name.to_owned(),
        program,
        args: spec.args.iter().map(|a| values.expand(a)).collect(),
        env,
        env_remove,
        cwd: Some(layout.repo.clone()),
        health: Some(spec.health.to_owned()),
        log_file: Some(layout.log_file(spec.name)),
        links: spec
            .links
            .iter()
            .map(|l| (l.url.to_owned(), l.what.to_owned()))
            .collect(),
    }
}

/// The first executable file called `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::PROCESSES;

    fn layout_with_everything() -> (tempfile::TempDir, Layout) {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for spec in PROCESSES {
            if let Program::Workspace(name) = spec.program {
                std::fs::write(bin.join(name), "").unwrap();
            }
            for need in spec.needs.iter().filter(|n| !n.starts_with('/')) {
                let path = root
                    .path()
                    .join(need.replace("{bin}", bin.to_str().unwrap()));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "").unwrap();
            }
        }
        let layout = Layout {
            repo: root.path().to_path_buf(),
            state: root.path().join(".lab"),
            bin,
        };
        (root, layout)
    }

    #[test]
    fn missing_binaries_and_configs_are_all_reported_before_anything_starts() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout {
            repo: root.path().to_path_buf(),
            state: root.path().join(".lab"),
            bin: root.path().join("nowhere"),
        };
        let only = vec!["collector-gateway".to_owned(), "fraud-check".to_owned()];
        let error = plan_with(PROCESSES, &only, &layout, false, &|_| true).unwrap_err();
        let text = error.to_string();
        for expected in [
            "crates/collector/configs/local/gateway.yaml (needed by collector-gateway) does not exist",
            "nowhere/collector is not built",
            "nowhere/lambda-emulator is not built",
            "nowhere/bootstrap (needed by fraud-check) does not exist",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }

    #[test]
    fn every_taken_port_is_named_with_its_process() {
        let (_root, layout) = layout_with_everything();
        let is_free = |port: u16| port != 8080 && port != 4317;
        let error = plan_with(PROCESSES, &[], &layout, false, &is_free).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(&port_in_use(8080, "order-service")), "{text}");
        assert!(
            text.contains(&port_in_use(4317, "collector-agent")),
            "{text}"
        );
        assert!(!text.contains("port 8082"), "{text}");
    }

    #[test]
    fn unknown_only_name_is_refused() {
        let (_root, layout) = layout_with_everything();
        let only = ["jaeger".to_owned()];
        let error = plan_with(PROCESSES, &only, &layout, false, &|_| true).unwrap_err();
        assert!(error.to_string().contains("--only jaeger: no such process"));
    }

    #[test]
    fn workshop_mode_plants_each_workloads_problems_and_the_default_plants_none() {
        let (_dir, layout) = layout_with_everything();
        let env_of = |workshop: bool, name: &str| {
            let mut plan = plan_with(PROCESSES, &[], &layout, false, &|_| true).unwrap();
            plan.plant_problems(workshop);
            let launch = plan.launches.into_iter().find(|l| l.name == name).unwrap();
            let value = launch
                .env
                .iter()
                .find(|(k, _)| k == "FAULT_SCENARIOS")
                .map(|(_, v)| v.clone());
            (
                value,
                launch.env_remove.contains(&"FAULT_SCENARIOS".to_owned()),
            )
        };
        let (order, _) = env_of(true, "order-service");
        let order = order.expect("order-service gets FAULT_SCENARIOS");
        assert!(order.contains("db_single_connection"), "{order}");
        assert!(!order.contains("drop_trace_context"), "{order}");
        let (inventory, _) = env_of(true, "inventory-service");
        assert_eq!(
            inventory.as_deref(),
            Some("n_plus_one_queries,span_per_item")
        );
        assert_eq!(env_of(true, "payment-service"), (None, false));
        assert_eq!(env_of(false, "order-service"), (None, true));
    }

    #[test]
    fn order_service_is_wired_to_the_agent_and_its_neighbours() {
        let (_root, layout) = layout_with_everything();
        let only = ["order-service".to_owned()];
        let plan = plan_with(PROCESSES, &only, &layout, false, &|_| true).unwrap();
        let order = &plan.launches[0];
        let env = |key: &str| {
            order
                .env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(env("OTEL_EXPORTER_OTLP_ENDPOINT"), "http://127.0.0.1:4317");
        assert_eq!(env("INVENTORY_URL"), "http://127.0.0.1:8082");
        assert_eq!(env("PAYMENT_URL"), "http://127.0.0.1:8081");
        assert_eq!(env("FRAUD_CHECK_URL"), "http://127.0.0.1:9000");
        assert_eq!(
            env("DATABASE_URL"),
            layout.state.join("orders.db").display().to_string()
        );
        assert!(env("OTEL_RESOURCE_ATTRIBUTES").contains("k8s.pod.name=order-service-"));
        assert_eq!(env("NO_COLOR"), "1");
        assert!(
            order
                .env_remove
                .contains(&"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned())
        );
        assert_eq!(order.cwd.as_deref(), Some(layout.repo.as_path()));
    }
}
