#!/usr/bin/env python3
"""`make kind-lint`: static checks of the Kind + LocalStack lab, for a machine without Docker.

- `kubectl kustomize` renders k8s/ and every object validates against the Kubernetes 1.31
  schemas in strict mode (kubernetes-validate);
- every rule file and dashboard of prometheus/ and grafana/ is in the manifests;
- every workload: pinned image tags (never latest), requests and limits, readiness and
  liveness probes, non-root, read-only root filesystem, no capabilities, RuntimeDefault
  seccomp; the lab images carry the workspace version; the memory limits, with the
  gateway at its HPA maximum, stay within 3 GiB;
- the NodePorts published by k8s/kind-config.yaml are the Services' NodePorts;
- the Kind collector configs pass `collector validate`;
- hadolint on the Dockerfile, shellcheck on scripts/ and localstack/, `make -n setup`.

Prints one line per problem and exits 1 if there is any.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "k8s"
MEMORY_BUDGET_MIB = 3 * 1024
problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)
    print(f"kind-lint: {msg}", file=sys.stderr)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        hint = "" if cmd[0] in ("make", "cargo") else " (pip install -r .ci/requirements.txt)"
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: command not found{hint}\n")


def workspace_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    m = re.search(r'^version = "([^"]+)"', text, re.M)
    assert m, "no version in Cargo.toml"
    return m.group(1)


def mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def render() -> list[dict]:
    r = run(["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", "k8s"])
    if r.returncode != 0:
        problem(f"kubectl kustomize k8s failed:\n{r.stderr}")
        return []
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(r.stdout)
        rendered = f.name
    v = run(["kubernetes-validate", "--strict", "--quiet", "-k", "1.31.0", rendered])
    if v.returncode != 0:
        problem(f"objects do not validate against Kubernetes 1.31 (strict):\n{v.stdout}{v.stderr}")
    os.unlink(rendered)
    return docs


def pod_specs(docs: list[dict]):
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet", "StatefulSet"):
            yield d, d["spec"]["template"]["spec"]


def check_workloads(docs: list[dict]) -> None:
    version = workspace_version()
    hpa_max = {
        d["spec"]["scaleTargetRef"]["name"]: d["spec"]["maxReplicas"]
        for d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    total = 0.0
    rows = []
    for d, spec in pod_specs(docs):
        name = f'{d["kind"]}/{d["metadata"]["name"]}'
        psc = spec.get("securityContext", {})
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(f"{name}: pod securityContext.seccompProfile.type must be RuntimeDefault")
        replicas = hpa_max.get(d["metadata"]["name"], d["spec"].get("replicas", 1))
        for c in spec.get("initContainers", []) + spec["containers"]:
            cname = f'{name} container {c["name"]}'
            image = c["image"]
            tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
            if not tag or tag == "latest":
                problem(f"{cname}: image {image} needs a pinned tag (not latest)")
            if image.startswith("otel-lab/"):
                if tag != version:
                    problem(f"{cname}: {image} should be tagged {version}, the workspace version (k8s/kustomization.yaml images)")
                if c.get("imagePullPolicy") != "IfNotPresent":
                    problem(f"{cname}: side-loaded images need imagePullPolicy IfNotPresent")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problem(f"{cname}: resources.{kind}.{r} is missing")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problem(f"{cname}: {probe} is missing")
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                problem(f"{cname}: runAsNonRoot is not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(f"{cname}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{cname}: allowPrivilegeEscalation must be false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problem(f"{cname}: capabilities.drop must be [ALL]")
            limit = mib(res.get("limits", {}).get("memory", "0"))
            total += limit * replicas
            rows.append((name, c["name"], replicas, limit))
    if total > MEMORY_BUDGET_MIB:
        problem(f"memory limits add up to {total:.0f} MiB (gateway at its HPA maximum), over the {MEMORY_BUDGET_MIB} MiB budget")
    if "-v" in sys.argv:
        for n, c, r, l in rows:
            print(f"  {n:<32} {c:<14} x{r}  {l:>5.0f} MiB")
        print(f"  total {total:.0f} MiB of {MEMORY_BUDGET_MIB}")


def check_listed(docs: list[dict]) -> None:
    """Every rule file and dashboard reaches the cluster (configMapGenerator has no globs)."""
    data = {d["metadata"]["name"].rsplit("-", 1)[0]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for f in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        if f.name not in data.get("prometheus-rules", {}):
            problem(f"prometheus/rules/{f.name} is not in k8s/kustomization.yaml (prometheus-rules)")
    for f in sorted((REPO / "grafana" / "dashboards").glob("*.json")):
        if f.name not in data.get("grafana-dashboards", {}):
            problem(f"grafana/dashboards/{f.name} is not in k8s/kustomization.yaml (grafana-dashboards)")
    # The rule files must also be mounted beside prometheus.yml (projected volume items).
    mounted = set()
    for _, spec in pod_specs(docs):
        for v in spec.get("volumes", []):
            for src in v.get("projected", {}).get("sources", []):
                for item in src.get("configMap", {}).get("items", []):
                    mounted.add(item["path"])
    for key in data.get("prometheus-rules", {}):
        if f"rules/{key}" not in mounted:
            problem(f"rule file {key} is in the ConfigMap but not mounted (k8s/backends/prometheus.yaml items)")


def check_ports(docs: list[dict]) -> None:
    kind_cfg = yaml.safe_load((K8S / "kind-config.yaml").read_text())
    published = {
        m["containerPort"]: m["hostPort"]
        for n in kind_cfg["nodes"]
        for m in n.get("extraPortMappings", [])
    }
    node_ports = {
        p["nodePort"]: (d["metadata"]["name"], p["port"])
        for d in docs
        if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
        for p in d["spec"]["ports"]
    }
    for container_port, host_port in published.items():
        if container_port not in node_ports:
            problem(f"kind-config.yaml publishes {container_port} (host {host_port}), which no Service uses as nodePort")
    for np, (svc, port) in node_ports.items():
        if np not in published:
            problem(f"Service {svc} nodePort {np} is not published by kind-config.yaml")
        elif published[np] != port:
            problem(f"Service {svc}: host port {published[np]} for nodePort {np} differs from the Service's port {port}")
    expected = {8080, 16686, 3000, 9090, 4317, 4318}
    if set(published.values()) != expected:
        problem(f"kind-config.yaml should publish {sorted(expected)}, publishes {sorted(published.values())}")


def check_collector_configs() -> None:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    collector = target / "debug" / "collector"
    if not collector.exists():
        r = run(["cargo", "build", "-p", "collector"])
        if r.returncode != 0:
            problem(f"cargo build -p collector failed:\n{r.stderr[-2000:]}")
            return
    env = dict(os.environ, K8S_NODE_NAME="kind-node", HOST_IP="172.18.0.2", POD_NAME="otel-gateway-0", GATEWAY_OTLP_ENDPOINT="otel-lab-control-plane:30317")
    for f in sorted((K8S / "collector").glob("*.yaml")):
        if "kind: " in f.read_text():
            continue  # a manifest, not a collector config
        r = run([str(collector), "validate", "--config", str(f)], env=env)
        if r.returncode != 0:
            problem(f"collector validate --config {f.relative_to(REPO)}:\n{r.stderr}{r.stdout}")


def check_tools() -> None:
    r = run(["hadolint", "Dockerfile"])
    if r.returncode != 0:
        problem(f"hadolint Dockerfile:\n{r.stdout}{r.stderr}")
    scripts = sorted(str(p.relative_to(REPO)) for d in ("scripts", "localstack") for p in (REPO / d).glob("*.sh"))
    r = run(["shellcheck", "--external-sources", *scripts])
    if r.returncode != 0:
        problem(f"shellcheck:\n{r.stdout}{r.stderr}")
    for target in ("setup", "teardown", "status", "images", "jaeger", "grafana"):
        r = run(["make", "-n", target])
        if r.returncode != 0:
            problem(f"make -n {target} does not expand:\n{r.stderr}")
    r = run(["make", "-n", "logs", "SERVICE=otel-gateway"])
    if r.returncode != 0:
        problem(f"make -n logs SERVICE=otel-gateway does not expand:\n{r.stderr}")


def main() -> int:
    docs = render()
    if docs:
        check_workloads(docs)
        check_listed(docs)
        check_ports(docs)
    check_collector_configs()
    check_tools()
    if problems:
        print(f"kind-lint: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("kind-lint: manifests, Dockerfile, scripts and Kind collector configs are clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
