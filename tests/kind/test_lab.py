"""`make setup`, `make status`, `make logs` and `make teardown` end to end against the fakes
of tests/kind/bin (see lab.py and fakes.py). One test per defect of issue 15, each set up
so that only its own defect can make it fail.

Run: make kind-test (part of make lint and make test).
"""

from __future__ import annotations

import json
import re
import unittest
import zipfile
from pathlib import Path

import yaml

from lab import REPO, FakeLab, explain

# Docker 28 and older with the classic image store (API 1.47, no `docker save --platform`):
# the world in which `kind load docker-image` always worked, for the tests of other defects.
CLASSIC_DOCKER = {"docker": {"version": "27.5.1", "api": "1.47", "containerd_store": False}}
LAB_IMAGES = ["collector", "order-service", "payment-service", "inventory-service"]
OUTSIDE = ["otel-lab-payment-service", "otel-lab-payment-sidecar", "otel-lab-inventory-service", "otel-lab-localstack"]


class LabTest(unittest.TestCase):
    state: dict | None = None

    def lab(self, state: dict | None = None, **kw) -> FakeLab:
        lab = FakeLab(state if state is not None else self.state, **kw)
        self.addCleanup(lab.cleanup)
        return lab

    def ok(self, lab: FakeLab, *targets: str, env: dict | None = None):
        r = lab.make(*targets, env=env)
        self.assertEqual(r.returncode, 0, f"make {' '.join(targets)} failed:\n{explain(r)}")
        return r

    def fails(self, lab: FakeLab, *targets: str, env: dict | None = None):
        r = lab.make(*targets, env=env)
        self.assertNotEqual(r.returncode, 0, f"make {' '.join(targets)} should have failed:\n{explain(r)}")
        return r

    @staticmethod
    def workload_images(lab: FakeLab, cluster: str = "otel-lab") -> dict[str, str]:
        out = {}
        for kind in ("Deployment", "DaemonSet"):
            for name, o in lab.objects(kind, cluster).items():
                for c in o["spec"]["template"]["spec"]["containers"]:
                    if c["image"].startswith("otel-lab/"):
                        out[f"{kind}/{name}"] = c["image"]
        return out


class EndToEnd(LabTest):
    def test_setup_status_logs_teardown(self):
        # The default fake Docker: Engine 29, the containerd image store, API 1.52 (item 1).
        lab = self.lab()
        r = self.ok(lab, "setup")
        self.assertIn("The lab is up (Kind cluster otel-lab + LocalStack)", r.stdout)
        node = lab.cluster()["node_images"]
        for workload, image in self.workload_images(lab).items():
            self.assertIn(image, node, f"{workload} runs {image}, which is not on the node")
        for argv in lab.calls("docker"):
            if argv[:1] == ["build"] and "--target" not in argv:
                self.assertIn("--provenance=false", argv, "an attestation makes the saved archive incomplete")
        st = lab.state()
        self.assertEqual(set(st["kind"]["clusters"]), {"otel-lab"})
        for name in OUTSIDE:
            self.assertEqual(lab.container(name)["status"], "running", name)
        # The EndpointSlices point at the containers, and order-service at the function URL.
        slices = lab.objects("EndpointSlice")
        self.assertEqual(slices["inventory-service-outside"]["endpoints"][0]["addresses"],
                         [lab.container("otel-lab-inventory-service")["networks"]["kind"]["ip"]])
        env = {e["name"]: e.get("value") for e in lab.objects("Deployment")["order-service"]["spec"]["template"]["spec"]["containers"][0]["env"]}
        self.assertRegex(env["FRAUD_CHECK_URL"], r"^http://[0-9a-f]+\.lambda-url\.us-east-1\.localhost\.localstack\.cloud:4566/$")
        self.assertEqual(st["aws"]["functions"]["fraud-check"]["Runtime"], "provided.al2023")

        # Item 8: the Lambda's state from get-function (list-functions leaves it out).
        r = self.ok(lab, "status")
        self.assertIn("fraud-check\tprovided.al2023\tx86_64\tActive\tSuccessful", r.stdout)
        self.assertNotIn("None", r.stdout)

        for service in ("otel-agent", "otel-gateway", "inventory-service", "fraud-check"):
            self.ok(lab, "logs", f"SERVICE={service}")

        r = self.ok(lab, "teardown")
        st = lab.state()
        self.assertEqual(st["kind"]["clusters"], {})
        self.assertEqual(st["docker"]["containers"], {})
        self.ok(lab, "teardown")  # nothing left to remove is fine
        r = self.ok(lab, "status")
        self.assertIn("no Kind cluster otel-lab", r.stderr)


class Item1ImageLoading(LabTest):
    """kind load with the containerd image store (Docker Engine 29, Docker Desktop): the
    default fake Docker of EndToEnd. Here: Docker before API 1.48, without `docker save
    --platform`."""

    def test_setup_loads_the_images_with_docker_before_api_1_48(self):
        lab = self.lab(CLASSIC_DOCKER)
        self.ok(lab, "setup")
        self.assertTrue(lab.cluster()["loads"])
        self.assertFalse([a for a in lab.calls("docker") if a[:1] == ["save"] and "--platform" in a])


class Item3Rerun(LabTest):
    state = CLASSIC_DOCKER

    def outside_images(self, lab: FakeLab) -> dict[str, str]:
        return {n: lab.container(n)["image"] for n in OUTSIDE if n != "otel-lab-localstack"}

    def test_rerunning_setup_rolls_what_changed_and_nothing_else(self):
        lab = self.lab()
        self.ok(lab, "setup")
        first, first_outside = self.workload_images(lab), self.outside_images(lab)
        self.assertEqual(set(first), {"Deployment/order-service", "Deployment/otel-gateway", "DaemonSet/otel-agent"})

        self.ok(lab, "setup")  # nothing changed: nothing rolls
        self.assertEqual(self.workload_images(lab), first)
        self.assertEqual(self.outside_images(lab), first_outside)

        lab.set_state(source_rev=2)  # a code change
        self.ok(lab, "setup")
        second = self.workload_images(lab)
        for workload, image in second.items():
            self.assertNotEqual(image, first[workload], f"{workload} kept {image} after a code change: its pods do not roll")
            self.assertIn(image, lab.cluster()["node_images"])
        for name, image in self.outside_images(lab).items():
            self.assertNotEqual(image, first_outside[name])
            self.assertEqual(lab.container(name)["image_id"], lab.state()["docker"]["images"][image]["id"])
        # Three runs, one queue mapping: a second would deliver every message twice.
        self.assertEqual(len(lab.state()["aws"]["mappings"]), 1)

    def test_a_localstack_started_without_sqs_is_replaced(self):
        # LocalStack as an older lab started it: SERVICES without sqs, which it then refuses.
        lab = self.lab()
        self.ok(lab, "setup")
        st = lab.state()
        localstack = st["docker"]["containers"]["otel-lab-localstack"]
        localstack["env"]["SERVICES"] = "lambda,iam,sts,logs"
        localstack["labels"] = {}
        st["aws"] = {"major": 2, "functions": {}, "urls": {}}
        lab.state_file.write_text(json.dumps(st))
        r = self.ok(lab, "setup")
        self.assertIn("replacing LocalStack", r.stderr)
        self.assertIn("sqs", lab.container("otel-lab-localstack")["env"]["SERVICES"].split(","))
        self.assertEqual(set(lab.state()["aws"]["queues"]), {"orders", "orders-dlq"})


class AfterOneSetup(LabTest):
    """Checks of the world one `make setup` leaves, sharing that setup. Docker before API 1.48
    with the classic image store: the old scripts got this far there, so each test fails
    for its own defect."""

    @classmethod
    def setUpClass(cls):
        cls.shared = FakeLab(CLASSIC_DOCKER)
        r = cls.shared.make("setup")
        if r.returncode != 0:
            cls.shared.cleanup()
            raise AssertionError(f"make setup failed:\n{explain(r)}")

    @classmethod
    def tearDownClass(cls):
        cls.shared.cleanup()

    # Item 2
    def test_every_port_make_traffic_uses_is_published_on_the_host(self):
        lab = self.shared
        published = {p["host_port"] for c in lab.state()["docker"]["containers"].values()
                     if c["status"] == "running" for p in c["ports"] if p["host_ip"] in ("127.0.0.1", "0.0.0.0")}
        cli = (REPO / "crates/traffic/src/cli.rs").read_text()
        ports = {name: int(port) for port, name in re.findall(
            r'default_value\s*=\s*"http://127\.0\.0\.1:(\d+)"\s*\)\]\s*pub (\w+): String', cli)}
        self.assertGreaterEqual(set(ports), {"target", "inventory", "explorer"},
                                f"could not read the default URLs of crates/traffic/src/cli.rs (found {ports})")
        for name, port in ports.items():
            self.assertIn(port, published, f"make traffic's --{name} default port {port} is not published on the host")
        # Each published port is in docs/kind.md's table of host ports.
        docs = (REPO / "docs/kind.md").read_text()
        table = docs[docs.index("### Ports on the host"):]
        table = table[:table.index("\n\n", table.index("|"))]
        for port in published:
            if port >= 40000:
                continue  # the API server's port, which kind picks and kubectl finds itself
            self.assertRegex(table, rf"\b{port}\b", f"host port {port} is not in docs/kind.md's ports table")

    # Item 4
    def test_every_telemetry_path_into_the_gateway_is_routed_by_trace_id(self):
        world = World(self.shared)
        sources = world.sources()
        self.assertEqual({s[0] for s in sources},
                         {"order-service", "payment-service", "inventory-service", "fraud-check", "fulfilment",
                          "a program on the host"})
        for who, host, port in sources:
            with self.subTest(source=who):
                world.follow(who, host, port, routed=False, seen=set())
        # Nothing reaches the trace-aware stage except through trace-id routing.
        for svc, port in world.service_ports_to_gateway():
            self.assertNotIn(port, world.balanced_ports(), f"Service {svc} reaches the gateway's routed-only port {port} directly")
        self.assertTrue(world.balanced_ports())

    # Item 8
    def test_status_shows_the_state_of_the_lambda(self):
        r = self.ok(self.shared, "status")
        self.assertIn("fraud-check\tprovided.al2023\tx86_64\tActive\tSuccessful", r.stdout)
        self.assertIn("fulfilment\tprovided.al2023\tx86_64\tActive\tSuccessful", r.stdout)
        self.assertNotIn("None", r.stdout)

    def test_status_shows_the_queues_and_their_mapping(self):
        lab = self.shared
        st = lab.state()
        st["aws"]["queues"]["orders-dlq"]["Messages"]["visible"] = 3
        lab.state_file.write_text(json.dumps(st))
        r = self.ok(lab, "status")
        self.assertRegex(r.stdout, r"(?m)^orders\t0\t0$")
        self.assertRegex(r.stdout, r"(?m)^orders-dlq\t3\t0$", "dead-lettered messages are shown")
        uuid = next(iter(st["aws"]["mappings"]))
        self.assertRegex(r.stdout, rf"(?m)^{uuid}\tEnabled\t10\t1$")

    # Issue 11: the asynchronous hop in LocalStack, set up as SQS → Lambda runs in production.
    def test_order_events_go_through_sqs_to_the_fulfilment_lambda(self):
        lab = self.shared
        st = lab.state()
        queues = st["aws"]["queues"]
        orders, dlq = queues["orders"]["Attributes"], queues["orders-dlq"]["Attributes"]
        fulfilment = st["aws"]["functions"]["fulfilment"]
        redrive = json.loads(orders["RedrivePolicy"])
        self.assertEqual(redrive["deadLetterTargetArn"], dlq["QueueArn"])
        self.assertEqual(int(redrive["maxReceiveCount"]), 5)
        self.assertGreaterEqual(int(orders["VisibilityTimeout"]), 6 * fulfilment["Timeout"],
                                "AWS's advice: six times the function's timeout")
        self.assertGreater(int(dlq["MessageRetentionPeriod"]), int(orders["MessageRetentionPeriod"]))
        (mapping,) = st["aws"]["mappings"].values()
        self.assertEqual(mapping["EventSourceArn"], orders["QueueArn"])
        self.assertEqual(mapping["FunctionArn"], fulfilment["FunctionArn"])
        self.assertEqual(mapping["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertEqual((mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]), (10, 1))
        self.assertEqual(mapping["State"], "Enabled")

        # The function calls the two containers at their addresses on the kind network.
        env = fulfilment["Environment"]["Variables"]
        ip = lambda name: lab.container(name)["networks"]["kind"]["ip"]
        self.assertEqual(env["PAYMENT_URL"], f"http://{ip('otel-lab-payment-sidecar')}:8081")
        self.assertEqual(env["INVENTORY_URL"], f"http://{ip('otel-lab-inventory-service')}:8082")
        self.assertEqual(env["OTEL_SERVICE_NAME"], "fulfilment")

        # order-service sends to the queue's URL, whose host the pod resolves to LocalStack.
        pod = lab.objects("Deployment")["order-service"]["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "order-service")
        order_env = {e["name"]: e.get("value") for e in container["env"]}
        self.assertEqual(order_env["ORDERS_QUEUE"], queues["orders"]["QueueUrl"])
        self.assertIn("AWS_REGION", order_env)
        localstack_ip = lab.objects("Service")["localstack"]["spec"]["clusterIP"]
        aliases = {h: a["ip"] for a in pod["hostAliases"] for h in a["hostnames"]}
        queue_host = re.match(r"https?://([^/:]+)", order_env["ORDERS_QUEUE"]).group(1)
        fn_host = re.match(r"https?://([^/:]+)", order_env["FRAUD_CHECK_URL"]).group(1)
        self.assertEqual(aliases.get(queue_host), localstack_ip)
        self.assertEqual(aliases.get(fn_host), localstack_ip)

    # Item 5
    def test_logs_of_the_lambda_with_aws_cli_v1_says_why(self):
        lab = self.shared
        self.addCleanup(lab.set_state, aws={"major": 2})
        lab.set_state(aws={"major": 1})
        r = self.fails(lab, "logs", "SERVICE=fraud-check")
        self.assertIn("needs the AWS CLI v2", r.stderr)
        self.assertNotIn("usage: aws", r.stderr)

    # The kustomize item, and item 3: what `kubectl apply -k k8s` applies runs. Last (zz):
    # it changes the workloads' images.
    def test_zz_kubectl_apply_k_works_as_typed_and_its_images_are_on_the_node(self):
        lab = self.shared
        r = lab.run(["kubectl", "--context", "kind-otel-lab", "apply", "-k", "k8s"])
        self.assertEqual(r.returncode, 0, explain(r))
        for d in ("deployment/otel-gateway", "deployment/order-service", "daemonset/otel-agent"):
            r = lab.run(["kubectl", "--context", "kind-otel-lab", "--namespace", "otel-lab", "rollout", "status", d])
            self.assertEqual(r.returncode, 0, explain(r))


class World:
    """The collectors, Services and senders as `make setup` left them in the fake cluster."""

    def __init__(self, lab: FakeLab):
        self.lab = lab
        self.st = lab.state()
        self.objects = lab.cluster()["objects"]
        self.node = "otel-lab-control-plane"
        self.node_ip = self.st["docker"]["containers"][self.node]["networks"]["kind"]["ip"]

    def get(self, kind: str, name: str) -> dict:
        return self.objects[f"{kind}/otel-lab/{name}"]

    def config_of(self, workload: dict) -> dict:
        spec = workload["spec"]["template"]["spec"]
        args = spec["containers"][0]["args"]
        path = args[args.index("--config") + 1]
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == mount["name"])
        return yaml.safe_load(self.get("ConfigMap", cm_name)["data"][path.rsplit("/", 1)[1]])

    @staticmethod
    def receivers_by_port(config: dict) -> dict[int, str]:
        out = {}
        for rid, rc in (config.get("receivers") or {}).items():
            for proto in (rc or {}).get("protocols", {}).values():
                out[int(str(proto["endpoint"]).rsplit(":", 1)[1])] = rid
        return out

    def gateway(self) -> dict:
        return self.get("Deployment", "otel-gateway")

    def gateway_ports(self) -> dict:
        return {p["name"]: p["containerPort"] for p in self.gateway()["spec"]["template"]["spec"]["containers"][0]["ports"]}

    def services_selecting_gateway(self):
        sel = self.gateway()["spec"]["selector"]["matchLabels"]
        for key, o in self.objects.items():
            if key.startswith("Service/") and (o["spec"].get("selector") or {}) and all(
                    (o["spec"].get("selector") or {}).get(k) == v for k, v in sel.items()):
                yield o

    def target_port(self, p: dict) -> int:
        t = p.get("targetPort", p["port"])
        return self.gateway_ports()[t] if isinstance(t, str) else int(t)

    def service_ports_to_gateway(self):
        for svc in self.services_selecting_gateway():
            if svc["spec"].get("clusterIP") != "None":
                for p in svc["spec"]["ports"]:
                    yield svc["metadata"]["name"], self.target_port(p)

    def balanced_ports(self) -> set[int]:
        """The gateway ports whose receivers feed trace-aware pipelines (tail sampling, span
        metrics, the export to Jaeger)."""
        config = self.config_of(self.gateway())
        by_port = self.receivers_by_port(config)
        out = set()
        for name, pl in config["service"]["pipelines"].items():
            if name.split("/")[0] == "traces" and not all(e.split("/")[0] == "loadbalancing" for e in pl["exporters"]):
                out |= {port for port, rid in by_port.items() if rid in pl["receivers"]}
        return out

    def sources(self) -> list[tuple[str, str, int]]:
        """(who, host, port) of every sender's OTLP endpoint, from what was deployed."""
        def endpoint(url: str) -> tuple[str, int]:
            m = re.fullmatch(r"(?:https?://)?([^:/]+):(\d+)/?", url)
            assert m, url
            return m.group(1), int(m.group(2))

        out = []
        env = {e["name"]: e.get("value") for e in self.get("Deployment", "order-service")["spec"]["template"]["spec"]["containers"][0]["env"]}
        out.append(("order-service", *endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"])))
        for name, who in (("otel-lab-payment-service", "payment-service"), ("otel-lab-inventory-service", "inventory-service")):
            c = self.st["docker"]["containers"][name]
            host, port = endpoint(c["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
            if c["network_mode"].startswith("container:") and host == "127.0.0.1":
                host = c["network_mode"].split(":", 1)[1]  # the namespace's owner: the sidecar
            out.append((who, host, port))
        for function in ("fraud-check", "fulfilment"):
            fn = self.st["aws"]["functions"][function]["Environment"]["Variables"]
            out.append((function, *endpoint(fn["OTEL_EXPORTER_OTLP_ENDPOINT"])))
        for m in self.lab.cluster()["config"]["nodes"][0]["extraPortMappings"]:
            if m["hostPort"] == 4317:
                out.append(("a program on the host", self.node, m["containerPort"]))
        return out

    def follow(self, who: str, host: str, port: int, routed: bool, seen: set) -> None:
        """Follows a span from (host, port) to the gateway's trace-aware stage; `routed` says
        whether the last hop was a loadbalancing exporter routing by trace id."""
        assert (host, port) not in seen, f"{who}: a loop through {host}:{port}"
        seen.add((host, port))
        node = host in (self.node, self.node_ip, "$(HOST_IP)")
        if host == "otel-lab-payment-sidecar":
            c = self.st["docker"]["containers"][host]
            path = next(v.split(":")[0] for v in c["volumes"] if v.split(":")[1] == c["args"][1])
            config = yaml.safe_load(Path(path).read_text())
            return self.follow_collector(who, "the ECS sidecar", config, port, c["env"], seen)
        if node:
            agent = self.get("DaemonSet", "otel-agent")
            for p in agent["spec"]["template"]["spec"]["containers"][0]["ports"]:
                if p.get("hostPort") == port:
                    return self.follow_collector(who, "the node agent", self.config_of(agent), p["containerPort"], {}, seen)
            for svc in self.services_selecting_gateway():
                for p in svc["spec"]["ports"]:
                    if p.get("nodePort") == port:
                        return self.enter_gateway(who, self.target_port(p), routed=False, seen=seen)
            raise AssertionError(f"{who}: nothing listens on the node's port {port}")
        m = re.fullmatch(r"([^.]+)\.otel-lab\.svc\.cluster\.local", host)
        if m:
            svc = self.get("Service", m.group(1))
            assert svc["spec"].get("clusterIP") == "None", f"{who}: sends to Service {m.group(1)}, which is not headless"
            p = next(p for p in svc["spec"]["ports"] if p["port"] == port)
            return self.enter_gateway(who, self.target_port(p), routed=routed, seen=seen)
        raise AssertionError(f"{who}: does not know where {host}:{port} is")

    def follow_collector(self, who: str, what: str, config: dict, port: int, env: dict, seen: set) -> None:
        rid = self.receivers_by_port(config).get(port)
        assert rid, f"{who}: {what} has no receiver on {port}"
        for name, pl in config["service"]["pipelines"].items():
            if name.split("/")[0] != "traces" or rid not in pl["receivers"]:
                continue
            for eid in pl["exporters"]:
                ec = config["exporters"][eid] or {}
                if eid.split("/")[0] == "loadbalancing":
                    assert ec.get("routing_key", "traceID") == "traceID", f"{who}: {what}'s {eid} does not route by trace id"
                    dns = ec["resolver"]["dns"]
                    self.follow(who, dns["hostname"], dns["port"], routed=True, seen=set(seen))
                elif eid.split("/")[0] in ("otlp", "otlp_grpc"):
                    endpoint = re.sub(r"\$\{env:(\w+)\}", lambda m: env[m.group(1)], ec["endpoint"])
                    host, _, p = endpoint.rpartition(":")
                    self.follow(who, host.split("://")[-1], int(p), routed=False, seen=set(seen))
                else:
                    raise AssertionError(f"{who}: {what} exports traces to {eid} before any gateway")

    def enter_gateway(self, who: str, port: int, routed: bool, seen: set) -> None:
        config = self.config_of(self.gateway())
        rid = self.receivers_by_port(config).get(port)
        assert rid, f"{who}: the gateway has no receiver on {port}"
        if port in self.balanced_ports():
            assert routed, (f"{who}: reaches the gateway's trace-aware pipelines on {port} ({rid}) without trace-id "
                            "routing, so the spans of one trace land on whichever replica the connection does")
            return
        for name, pl in config["service"]["pipelines"].items():
            if name.split("/")[0] == "traces" and rid in pl["receivers"]:
                for eid in pl["exporters"]:
                    ec = config["exporters"][eid] or {}
                    assert eid.split("/")[0] == "loadbalancing" and ec.get("routing_key", "traceID") == "traceID", \
                        f"{who}: the gateway's {name} exports to {eid} without routing by trace id"
                    dns = ec["resolver"]["dns"]
                    self.follow(who, dns["hostname"], dns["port"], routed=True, seen=set(seen))


class Item5Prerequisites(LabTest):
    def setup_fails_naming(self, lab: FakeLab, *words: str, env: dict | None = None):
        r = self.fails(lab, "setup", env=env)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertFalse([a for a in lab.calls("docker") if a[:1] == ["build"]], "setup went on to build images")
        return r

    def test_cargo_is_needed_on_macos_too(self):
        lab = self.lab({"uname": {"s": "Darwin", "m": "arm64"}, "docker": {"arch": "aarch64"}}, without=("cargo",))
        self.setup_fails_naming(lab, "missing: cargo")

    def test_the_aws_cli_must_be_v2(self):
        lab = self.lab({"aws": {"major": 1}})
        self.setup_fails_naming(lab, "AWS CLI v2", "aws-cli/1.40.38")

    def test_aws_itself_is_checked_not_only_awslocal(self):
        lab = self.lab(without=("aws",))
        self.setup_fails_naming(lab, "missing: aws ")

    def test_kubectl_and_kind_versions(self):
        lab = self.lab({"kube": {"client_minor": "29"}, "kind": {"version": "v0.27.0"}})
        self.setup_fails_naming(lab, "kubectl 1.30 or newer (found 1.29)", "kind v0.29 or newer (found 0.27.0)")

    def test_macos_builds_the_lambda_in_docker(self):
        lab = self.lab({"uname": {"s": "Darwin", "m": "arm64"}, "docker": {"arch": "aarch64"}})
        self.ok(lab, "setup")
        self.assertEqual(lab.state()["aws"]["functions"]["fraud-check"]["Architectures"], ["arm64"])
        self.assertTrue([a for a in lab.calls("docker") if a[:1] == ["build"] and "lambda-zip" in a])
        self.assertFalse(lab.calls("cargo"))


class Item6RootlessDocker(LabTest):
    ROOTLESS = {"docker": {**CLASSIC_DOCKER["docker"], "rootless": True, "socket": "unix:///run/user/1000/docker.sock"}}

    def localstack_socket(self, lab: FakeLab) -> list[str]:
        return [v for v in lab.container("otel-lab-localstack")["volumes"] if v.endswith(":/var/run/docker.sock")]

    def test_localstack_gets_the_socket_docker_host_names(self):
        lab = self.lab(self.ROOTLESS)
        self.ok(lab, "setup", env={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})
        self.assertEqual(self.localstack_socket(lab), ["/run/user/1000/docker.sock:/var/run/docker.sock"])

    def test_localstack_gets_the_socket_of_the_docker_context(self):
        lab = self.lab({"docker": {**self.ROOTLESS["docker"], "context_host": "unix:///run/user/1000/docker.sock",
                                   "networks": ["bridge", "kind"]}})
        r = lab.run(["bash", "localstack/start.sh"])
        self.assertEqual(r.returncode, 0, explain(r))
        self.assertEqual(self.localstack_socket(lab), ["/run/user/1000/docker.sock:/var/run/docker.sock"])

    def test_rootful_docker_keeps_var_run_docker_sock(self):
        lab = self.lab({"docker": {"networks": ["bridge", "kind"]}})
        r = lab.run(["bash", "localstack/start.sh"])
        self.assertEqual(r.returncode, 0, explain(r))
        self.assertEqual(self.localstack_socket(lab), ["/var/run/docker.sock:/var/run/docker.sock"])


class Item7CrashedContainer(LabTest):
    state = {**CLASSIC_DOCKER, "crash": ["otel-lab-inventory-service"]}

    def test_a_container_that_stopped_is_named_with_its_log(self):
        lab = self.lab()
        r = self.fails(lab, "setup")
        self.assertIn("container otel-lab-inventory-service is exited (exit code 1)", r.stderr)
        self.assertIn("panicked", r.stderr)  # its log
        self.assertNotIn("Invalid value", r.stderr)
        self.assertFalse(lab.objects("EndpointSlice"), "EndpointSlices were applied with a stopped container's address")


class Item9Names(LabTest):
    state = CLASSIC_DOCKER

    def test_cluster_names_the_kind_cluster(self):
        lab = self.lab()
        env = {"CLUSTER": "lab2"}
        r = self.ok(lab, "setup", env=env)
        self.assertIn("Kind cluster lab2", r.stdout)
        self.assertEqual(set(lab.state()["kind"]["clusters"]), {"lab2"})
        self.ok(lab, "status", env=env)
        self.ok(lab, "teardown", env=env)
        self.assertEqual(lab.state()["kind"]["clusters"], {})

    # LocalStack alone (localstack/start.sh) on an existing `kind` network.
    def start_localstack(self, env: dict):
        lab = self.lab({"docker": {"networks": ["bridge", "kind"]}})
        r = lab.run(["bash", "localstack/start.sh"], env=env)
        self.assertEqual(r.returncode, 0, explain(r))
        return lab, r

    def test_the_token_is_not_passed_to_the_community_image(self):
        lab, r = self.start_localstack({"LOCALSTACK_AUTH_TOKEN": "ls-secret"})
        self.assertNotIn("LOCALSTACK_AUTH_TOKEN", lab.container("otel-lab-localstack")["env"])
        self.assertIn("does not use it", r.stderr)

    def test_the_token_is_passed_to_localstack_pro(self):
        lab, _ = self.start_localstack({"LOCALSTACK_AUTH_TOKEN": "ls-secret", "LOCALSTACK_IMAGE": "localstack/localstack-pro:4.14.0"})
        self.assertEqual(lab.container("otel-lab-localstack")["env"]["LOCALSTACK_AUTH_TOKEN"], "ls-secret")
        self.assertEqual(lab.container("otel-lab-localstack")["image"], "localstack/localstack-pro:4.14.0")


class Item11Glibc(LabTest):
    def check(self, lab: FakeLab, binary: str, limit: str | None = None):
        return lab.run(["bash", "crates/lambda-handler/check-glibc.sh", binary], env={"LAMBDA_GLIBC": limit} if limit else None)

    def test_the_lambda_binary_needs_no_glibc_newer_than_provided_al2023(self):
        lab = self.lab()
        r = self.check(lab, lab.env["FAKE_BOOTSTRAP"])
        self.assertEqual(r.returncode, 0, explain(r))
        self.assertRegex(r.stdout, r"needs at most GLIBC_2\.\d+ \(Lambda provided\.al2023 has 2\.34\)")

    def test_a_newer_glibc_symbol_is_refused_and_named(self):
        lab = self.lab()
        newest = re.search(r"GLIBC_(2\.(\d+))", self.check(lab, lab.env["FAKE_BOOTSTRAP"]).stdout)
        self.assertGreaterEqual(int(newest.group(2)), 10, "the comparison below needs a two-digit minor version")
        # 2.4 < 2.<two digits>: compared as numbers, not text.
        r = self.check(lab, lab.env["FAKE_BOOTSTRAP"], limit="2.4")
        self.assertEqual(r.returncode, 1, explain(r))
        self.assertIn(f"needs GLIBC_{newest.group(1)}, newer than Lambda's provided.al2023 (glibc 2.4)", r.stderr)
        self.assertRegex(r.stderr, rf"\S+@GLIBC_{re.escape(newest.group(1))}")

    def test_make_lambda_zip_runs_the_check(self):
        lab = self.lab()
        r = lab.make("lambda-zip", env={"LAMBDA_GLIBC": "2.4"})
        self.assertNotEqual(r.returncode, 0, explain(r))
        self.assertIn("newer than Lambda's provided.al2023", r.stderr)
        r = self.ok(lab, "lambda-zip")
        self.assertIn("glibc check: bootstrap needs at most GLIBC_2.", r.stderr)
        self.assertIn("glibc check: fulfilment needs at most GLIBC_2.", r.stderr)
        for zip_name in ("bootstrap.zip", "fulfilment.zip"):
            with zipfile.ZipFile(Path(lab.env["CARGO_TARGET_DIR"]) / "lambda" / zip_name) as z:
                self.assertEqual(z.namelist(), ["bootstrap"], zip_name)


class Kustomize(LabTest):
    def test_the_copies_follow_the_files_make_run_reads(self):
        lab = self.lab()
        r = lab.run(["bash", "scripts/sync-kind-configs.sh", "--check"])
        self.assertEqual(r.returncode, 0, explain(r))
        dashboard = lab.repo / "grafana/dashboards/1-lab-overview.json"
        data = json.loads(dashboard.read_text())
        data["title"] = "Lab overview, edited"
        dashboard.write_text(json.dumps(data))
        r = lab.run(["bash", "scripts/sync-kind-configs.sh", "--check"])
        self.assertEqual(r.returncode, 1, explain(r))
        self.assertIn("k8s/generated/grafana/dashboards/1-lab-overview.json differs", r.stderr)
        self.ok(lab, "kind-configs")
        r = lab.run(["kubectl", "kustomize", "k8s"])
        self.assertEqual(r.returncode, 0, explain(r))
        self.assertIn("Lab overview, edited", r.stdout)


class DocsCommands(LabTest):
    """Every `make` command docs/kind.md shows in a sh block runs as written."""

    state = CLASSIC_DOCKER
    # Needs the real services behind 127.0.0.1:8080 (crates/traffic's own tests cover it).
    CANNOT = {"make traffic"}

    def test_the_make_commands_of_docs_kind_md(self):
        docs = (REPO / "docs/kind.md").read_text()
        commands = []
        for block in re.findall(r"```sh\n(.*?)```", docs, re.S):
            for line in block.splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("make "):
                    commands.append(line)
        self.assertIn("make setup", commands)
        self.assertIn("make teardown", commands)
        lab = self.lab()
        for command in commands:
            if command.split(" ARGS=")[0] in self.CANNOT:
                continue
            with self.subTest(command=command):
                self.ok(lab, *command.split()[1:])


if __name__ == "__main__":
    unittest.main()
