//! The lab's processes: one table, in start order. Adding a process is adding one entry.
//!
//! Strings may hold placeholders that `lab up` fills in (see [`crate::layout::Placeholders`]):
//! `{repo}` the checkout, `{state}` the state directory (`.lab/`), `{bin}` the directory of
//! the built binaries, `{pod_name}` and `{ecs_task_id}` per-run names of the simulated
//! Kubernetes pod and ECS task.

/// What runs a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// A binary of this workspace, found in the binaries directory (`--bin-dir`).
    Workspace(&'static str),
    /// A tool that may be installed on the machine, found on `PATH`. When it is absent the
    /// lab runs without it and prints `install_hint`.
    Optional {
        name: &'static str,
        install_hint: &'static str,
    },
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Workspace(name) | Program::Optional { name, .. } => name,
        }
    }
}

/// A TCP port a process binds on 127.0.0.1, checked free before anything starts.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    pub number: u16,
    pub what: &'static str,
}

/// A line of the table printed once the lab is up.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub url: &'static str,
    pub what: &'static str,
}

/// One process of the lab.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSpec {
    /// Its name in log prefixes, in messages and for `--only`.
    pub name: &'static str,
    pub program: Program,
    pub args: &'static [&'static str],
    /// Set on top of the lab's own environment.
    pub env: &'static [(&'static str, &'static str)],
    pub ports: &'static [Port],
    /// GET until it answers 2xx; the next process starts only then.
    pub health: &'static str,
    /// Files it reads (paths relative to the checkout, or absolute after placeholders).
    /// A missing one stops `lab up` for a workspace process and skips an optional one.
    pub needs: &'static [&'static str],
    pub links: &'static [Link],
    /// Started only by `lab up --workshop` (`make workshop`).
    pub workshop_only: bool,
}

const fn port(number: u16, what: &'static str) -> Port {
    Port { number, what }
}

const fn link(url: &'static str, what: &'static str) -> Link {
    Link { url, what }
}

/// Every process `lab up` starts, in start order; stopped in reverse order, so the
/// collectors go last and carry the services' final spans through agent → gateway.
pub const PROCESSES: &[ProcessSpec] = &[
    // The workshop's second backend (modules 13 and 15): first, so the gateway can reach it
    // from its first export, and last to stop.
    ProcessSpec {
        name: "vendor-backend",
        program: Program::Workspace("collector"),
        args: &["--config", "{repo}/docs/workshop/files/vendor.yaml"],
        env: &[],
        ports: &[
            port(4517, "OTLP gRPC"),
            port(4518, "OTLP HTTP"),
            port(8885, "own metrics"),
            port(13136, "health check"),
            port(16687, "its trace explorer"),
        ],
        health: "http://127.0.0.1:13136/",
        needs: &["docs/workshop/files/vendor.yaml"],
        links: &[
            link(
                "http://127.0.0.1:16687",
                "the workshop's second backend: its own trace explorer",
            ),
            link(
                "127.0.0.1:4517 / :4518",
                "its OTLP gRPC / HTTP (nothing sends here until your gateway config does)",
            ),
        ],
        workshop_only: true,
    },
    ProcessSpec {
        name: "collector-gateway",
        program: Program::Workspace("collector"),
        args: &[
            "--config",
            "{repo}/crates/collector/configs/local/gateway.yaml",
        ],
        env: &[("LAB_STATE_DIR", "{state}")],
        ports: &[
            port(4417, "OTLP gRPC"),
            port(4418, "OTLP HTTP"),
            port(8888, "own metrics"),
            port(8889, "Prometheus exporter"),
            port(13133, "health check"),
            port(16686, "trace explorer"),
        ],
        health: "http://127.0.0.1:13133/",
        needs: &["crates/collector/configs/local/gateway.yaml"],
        links: &[
            link(
                "http://127.0.0.1:16686",
                "trace explorer (Jaeger API and UI)",
            ),
            link(
                "http://127.0.0.1:8889/metrics",
                "Prometheus exporter: RED and span metrics",
            ),
            link(
                "http://127.0.0.1:8888/metrics",
                "gateway collector's own metrics",
            ),
            link(
                "127.0.0.1:4417 / :4418",
                "gateway OTLP gRPC / HTTP (EC2, Lambda, agent, sidecar)",
            ),
        ],
        workshop_only: false,
    },
    ProcessSpec {
        name: "collector-agent",
        program: Program::Workspace("collector"),
        args: &[
            "--config",
            "{repo}/crates/collector/configs/local/agent.yaml",
        ],
        env: &[("K8S_NODE_NAME", "lab-node-1")],
        ports: &[
            port(4317, "OTLP gRPC"),
            port(4318, "OTLP HTTP"),
            port(8887, "own metrics"),
            port(13134, "health check"),
        ],
        health: "http://127.0.0.1:13134/",
        needs: &["crates/collector/configs/local/agent.yaml"],
        links: &[
            link(
                "127.0.0.1:4317 / :4318",
                "agent OTLP gRPC / HTTP (the Kubernetes node's DaemonSet)",
            ),
            link(
                "http://127.0.0.1:8887/metrics",
                "agent collector's own metrics",
            ),
        ],
        workshop_only: false,
    },
    ProcessSpec {
        name: "collector-sidecar",
        program: Program::Workspace("collector"),
        args: &[
            "--config",
            "{repo}/crates/collector/configs/local/sidecar.yaml",
        ],
        env: &[],
        ports: &[
            port(4327, "OTLP gRPC"),
            port(4328, "OTLP HTTP"),
            port(8886, "own metrics"),
            port(13135, "health check"),
        ],
        health: "http://127.0.0.1:13135/",
        needs: &["crates/collector/configs/local/sidecar.yaml"],
        links: &[link(
            "http://127.0.0.1:8886/metrics",
            "ECS sidecar collector's own metrics",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "inventory-service",
        program: Program::Workspace("inventory-service"),
        args: &[],
        env: &[
            ("OTEL_SERVICE_NAME", "inventory-service"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4417"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "cloud.provider=aws,cloud.platform=aws_ec2,cloud.region=us-east-1,\
                 cloud.availability_zone=us-east-1a,host.id=i-0lab5e7c1d2f3a9b4,\
                 host.type=t3.small,host.name=ip-10-0-1-17.ec2.internal,\
                 deployment.environment.name=lab",
            ),
            ("LISTEN_ADDR", "127.0.0.1:8082"),
            ("DATABASE_URL", "{state}/inventory.db"),
        ],
        ports: &[port(8082, "HTTP API")],
        health: "http://127.0.0.1:8082/healthz",
        needs: &[],
        links: &[link(
            "http://127.0.0.1:8082/inventory",
            "inventory API (EC2 instance, OTLP straight to the gateway)",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "payment-service",
        program: Program::Workspace("payment-service"),
        args: &[],
        env: &[
            ("OTEL_SERVICE_NAME", "payment-service"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4327"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=us-east-1,\
                 cloud.availability_zone=us-east-1a,aws.ecs.launchtype=fargate,\
                 aws.ecs.cluster.arn=arn:aws:ecs:us-east-1:000000000000:cluster/otel-lab,\
                 aws.ecs.task.arn=arn:aws:ecs:us-east-1:000000000000:task/otel-lab/{ecs_task_id},\
                 aws.ecs.task.family=payment,aws.ecs.task.revision=1,\
                 deployment.environment.name=lab",
            ),
            ("LISTEN_ADDR", "127.0.0.1:8081"),
            ("DATABASE_URL", "{state}/payments.db"),
        ],
        ports: &[port(8081, "HTTP API")],
        health: "http://127.0.0.1:8081/healthz",
        needs: &[],
        links: &[link(
            "http://127.0.0.1:8081",
            "payment API (ECS Fargate task, via its sidecar collector)",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "fraud-check",
        program: Program::Workspace("lambda-emulator"),
        args: &[
            "--function",
            "{bin}/bootstrap",
            "--listen",
            "127.0.0.1:9000",
            "--idle-timeout",
            "60s",
            "--function-name",
            "fraud-check",
        ],
        env: &[
            ("OTEL_SERVICE_NAME", "fraud-check"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4418"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "cloud.provider=aws,cloud.platform=aws_lambda,cloud.region=us-east-1,\
                 faas.name=fraud-check,deployment.environment.name=lab",
            ),
        ],
        ports: &[port(9000, "function URL")],
        health: "http://127.0.0.1:9000/healthz",
        needs: &["{bin}/bootstrap"],
        links: &[link(
            "http://127.0.0.1:9000",
            "fraud-check Lambda function URL (local Runtime API emulator)",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "fulfilment",
        program: Program::Workspace("lambda-emulator"),
        args: &[
            "--function",
            "{bin}/fulfilment",
            "--function-name",
            "fulfilment",
            // No Function URL: the address answers /healthz and /admin/faults only.
            "--listen",
            "127.0.0.1:9001",
            "--no-function-url",
            "--idle-timeout",
            "60s",
            "--timeout",
            "10s",
            // The event source mapping: the queue order-service's outbox sends to.
            "--queue-file",
            "{state}/queue.db",
            "--queue",
            "orders",
            "--batch-size",
            "10",
            "--batching-window",
            "1s",
            "--visibility-timeout",
            "30s",
            "--max-receive-count",
            "3",
            "--dead-letter-queue",
            "orders-dlq",
        ],
        env: &[
            ("OTEL_SERVICE_NAME", "fulfilment"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4418"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "cloud.provider=aws,cloud.platform=aws_lambda,cloud.region=us-east-1,\
                 faas.name=fulfilment,deployment.environment.name=lab",
            ),
            ("PAYMENT_URL", "http://127.0.0.1:8081"),
            ("INVENTORY_URL", "http://127.0.0.1:8082"),
        ],
        ports: &[port(9001, "health and configuration (no function URL)")],
        health: "http://127.0.0.1:9001/healthz",
        needs: &["{bin}/fulfilment"],
        links: &[],
        workshop_only: false,
    },
    ProcessSpec {
        name: "order-service",
        program: Program::Workspace("order-service"),
        args: &[],
        env: &[
            ("OTEL_SERVICE_NAME", "order-service"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "k8s.namespace.name=otel-lab,k8s.deployment.name=order-service,\
                 k8s.pod.name={pod_name},k8s.node.name=lab-node-1,\
                 deployment.environment.name=lab",
            ),
            ("LISTEN_ADDR", "127.0.0.1:8080"),
            ("DATABASE_URL", "{state}/orders.db"),
            ("QUEUE_DATABASE", "{state}/queue.db"),
            ("INVENTORY_URL", "http://127.0.0.1:8082"),
            ("PAYMENT_URL", "http://127.0.0.1:8081"),
            ("FRAUD_CHECK_URL", "http://127.0.0.1:9000"),
        ],
        ports: &[port(8080, "HTTP API")],
        health: "http://127.0.0.1:8080/healthz",
        needs: &[],
        links: &[link(
            "http://127.0.0.1:8080",
            "order API: POST /orders (Kubernetes pod, via the node's agent)",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "prometheus",
        program: Program::Optional {
            name: "prometheus",
            install_hint: "Prometheus not installed — `sudo apt-get install prometheus` to get \
                           dashboards-ready metrics on :9090",
        },
        args: &[
            "--config.file={repo}/prometheus/prometheus-local.yml",
            "--storage.tsdb.path={state}/prometheus",
            "--web.listen-address=127.0.0.1:9090",
            "--enable-feature=exemplar-storage",
        ],
        env: &[],
        ports: &[port(9090, "web UI and API")],
        health: "http://127.0.0.1:9090/-/ready",
        needs: &["prometheus/prometheus-local.yml"],
        links: &[link(
            "http://127.0.0.1:9090",
            "Prometheus (scrapes the collectors)",
        )],
        workshop_only: false,
    },
    ProcessSpec {
        name: "grafana",
        program: Program::Optional {
            name: "grafana-server",
            install_hint: "Grafana not installed — see https://grafana.com/docs/grafana/latest/setup-grafana/installation/ \
                           for dashboards on :3000",
        },
        args: &["--homepath", "/usr/share/grafana"],
        env: &[
            ("GF_PATHS_DATA", "{state}/grafana"),
            ("GF_PATHS_LOGS", "{state}/grafana/log"),
            ("GF_PATHS_PROVISIONING", "{repo}/grafana/provisioning-local"),
            ("GF_SERVER_HTTP_ADDR", "127.0.0.1"),
            ("GF_SERVER_HTTP_PORT", "3000"),
            ("GF_AUTH_ANONYMOUS_ENABLED", "true"),
            ("GF_AUTH_ANONYMOUS_ORG_ROLE", "Admin"),
            ("GF_AUTH_DISABLE_LOGIN_FORM", "true"),
        ],
        ports: &[port(3000, "web UI")],
        health: "http://127.0.0.1:3000/api/health",
        needs: &["grafana/provisioning-local", "/usr/share/grafana"],
        links: &[link("http://127.0.0.1:3000", "Grafana dashboards")],
        workshop_only: false,
    },
];

/// The names `--only` accepts.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROCESSES.iter().map(|p| p.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static ProcessSpec {
        PROCESSES.iter().find(|p| p.name == name).unwrap()
    }

    fn env<'a>(spec: &'a ProcessSpec, key: &str) -> Option<&'a str> {
        spec.env.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn port_of(url: &str) -> u16 {
        let authority = url.split("://").nth(1).unwrap_or(url);
        let host_port = authority.split('/').next().unwrap();
        host_port.rsplit(':').next().unwrap().parse().unwrap()
    }

    #[test]
    fn no_two_processes_bind_the_same_port_or_share_a_name() {
        let mut ports: Vec<u16> = PROCESSES
            .iter()
            .flat_map(|p| p.ports.iter().map(|port| port.number))
            .collect();
        let count = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), count, "a port appears twice in the table");
        let mut names: Vec<&str> = names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROCESSES.len());
    }

    #[test]
    fn every_health_check_is_on_a_port_its_process_binds() {
        for process in PROCESSES {
            let port = port_of(process.health);
            assert!(
                process.ports.iter().any(|p| p.number == port),
                "{}: health check {} is not on one of its ports",
                process.name,
                process.health
            );
        }
    }

    /// Each workload's telemetry goes to a collector that starts before it (and so stops
    /// after it), along the path the design gives its platform.
    #[test]
    fn every_workload_exports_to_its_platforms_collector_started_before_it() {
        let expected = [
            ("order-service", "collector-agent"),
            ("payment-service", "collector-sidecar"),
            ("inventory-service", "collector-gateway"),
            ("fraud-check", "collector-gateway"),
        ];
        let position = |name: &str| PROCESSES.iter().position(|p| p.name == name).unwrap();
        for (workload, collector) in expected {
            let endpoint = env(spec(workload), "OTEL_EXPORTER_OTLP_ENDPOINT").unwrap();
            let port = port_of(endpoint);
            assert!(
                spec(collector).ports.iter().any(|p| p.number == port),
                "{workload} sends to {endpoint}, which is not {collector}'s"
            );
            assert!(position(collector) < position(workload));
        }
        assert_eq!(
            env(spec("fraud-check"), "OTEL_EXPORTER_OTLP_PROTOCOL"),
            Some("http/protobuf"),
            "the Lambda exports over HTTP, as inside AWS"
        );
    }

    #[test]
    fn order_service_starts_after_everything_it_calls() {
        let order = spec("order-service");
        let position = |name: &str| PROCESSES.iter().position(|p| p.name == name).unwrap();
        for (key, callee) in [
            ("INVENTORY_URL", "inventory-service"),
            ("PAYMENT_URL", "payment-service"),
            ("FRAUD_CHECK_URL", "fraud-check"),
        ] {
            let url = env(order, key).unwrap();
            assert!(
                spec(callee).ports.iter().any(|p| p.number == port_of(url)),
                "{key}={url} is not {callee}'s port"
            );
            assert!(position(callee) < position("order-service"));
        }
    }

    #[test]
    fn every_workload_carries_its_platforms_resource_attributes() {
        let expected = [
            ("order-service", "k8s.pod.name={pod_name}"),
            ("payment-service", "cloud.platform=aws_ecs"),
            ("inventory-service", "cloud.platform=aws_ec2"),
            ("fraud-check", "cloud.platform=aws_lambda"),
        ];
        for (workload, attribute) in expected {
            let attributes = env(spec(workload), "OTEL_RESOURCE_ATTRIBUTES").unwrap();
            assert!(attributes.contains(attribute), "{workload}: {attributes}");
            assert!(
                attributes.contains("deployment.environment.name=lab"),
                "{workload}: {attributes}"
            );
            assert!(!attributes.contains(' '), "{workload}: {attributes:?}");
            assert_eq!(env(spec(workload), "OTEL_SERVICE_NAME"), Some(workload));
        }
    }
}
