#!/usr/bin/env python3
"""`make kind-lint`: static checks of the Kind + LocalStack lab, for a machine without Docker.

- `kubectl kustomize k8s`, as `kubectl apply -k k8s` reads it (no load-restrictor flag),
  renders, and every object validates against the Kubernetes 1.31 schemas in strict mode
  (kubernetes-validate);
- the Prometheus and Grafana copies in k8s/generated/ are those of prometheus/ and grafana/
  (scripts/sync-kind-configs.sh --check), and every rule file and dashboard is in the
  manifests;
- every workload: pinned image tags (never latest), requests and limits, readiness and
  liveness probes, non-root, read-only root filesystem, no capabilities, RuntimeDefault
  seccomp; the lab images carry the workspace version; the memory limits, with the
  gateway at its HPA maximum, stay within 3 GiB;
- the NodePorts published by k8s/kind-config.yaml are the Services' NodePorts;
- the kind node image's digest is the one the kind release named beside it was published
  with, and that release is the minimum scripts/prerequisites.sh asks for; the minimum kind
  and kubectl versions of docs/kind.md are those of scripts/prerequisites.sh;
- the image build: `cargo chef cook` and the build of the binaries select the same
  packages, targets and features, in a layer every image shares (no BIN before it);
  scripts/images.sh builds without attestations;
- the Kind collector configs pass `collector validate`;
- hadolint on the Dockerfile, shellcheck on scripts/, localstack/ and the Lambda packaging,
  no bash 4 features in them (macOS ships bash 3.2), `make -n setup`.

The fake-PATH tests of tests/kind/ (`make kind-test`) run the scripts themselves.
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
    # No --load-restrictor: what `kubectl apply -k k8s` renders, as a user types it.
    r = run(["kubectl", "kustomize", "k8s"])
    if r.returncode != 0:
        problem(f"kubectl kustomize k8s (as kubectl apply -k k8s reads it) failed:\n{r.stderr}")
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


def check_generated_copies() -> None:
    """k8s/generated/ holds byte-for-byte copies of what `make run` reads."""
    r = run(["bash", "scripts/sync-kind-configs.sh", "--check"])
    if r.returncode != 0:
        problem(f"k8s/generated/ has drifted from prometheus/ and grafana/:\n{r.stderr}")


# The node images each kind release was published with, from its release notes (the digest
# picks the build: kind publishes a new build of the same Kubernetes tag with each release).
KIND_NODE_IMAGES = {
    ("0.28", "v1.31.9"): "sha256:156da58ab617d0cb4f56bbdb4b493f4dc89725505347a4babde9e9544888bb92",
    ("0.29", "v1.31.9"): "sha256:b94a3a6c06198d17f59cca8c6f486236fa05e2fb359cbd75dabbfc348a10b211",
    ("0.29", "v1.32.5"): "sha256:e3b2327e3a5ab8c76f5ece68936e4cafaa82edf58486b769727ab0b3b97a5b0d",
    ("0.29", "v1.33.1"): "sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
}


def shell_assignment(path: Path, name: str) -> str | None:
    m = re.search(rf"^{name}=(\S+)", path.read_text(), re.M)
    return m.group(1) if m else None


def check_versions() -> None:
    text = (K8S / "kind-config.yaml").read_text()
    m = re.search(r"kind v(\d+\.\d+)(?:\.\d+)?\b[^\n]*\n(?:\s*#[^\n]*\n)*\s*image: kindest/node:(v[\d.]+)@(sha256:[0-9a-f]{64})", text)
    if not m:
        problem("k8s/kind-config.yaml: the node image (kindest/node:<tag>@sha256:...) should follow a comment naming the kind release it was built for (kind vX.Y)")
        return
    kind_release, tag, digest = m.groups()
    known = KIND_NODE_IMAGES.get((kind_release, tag))
    if known is None:
        problem(f"k8s/kind-config.yaml: kind v{kind_release}'s build of {tag} is not in scripts/kind_lint.py KIND_NODE_IMAGES (add it from the release notes)")
    elif known != digest:
        others = [f"v{r}" for (r, t), d in KIND_NODE_IMAGES.items() if t == tag and d == digest]
        problem(f"k8s/kind-config.yaml: {tag}@{digest[:19]}... is not kind v{kind_release}'s build of {tag} ({known[:19]}...)"
                + (f"; it is kind {', '.join(others)}'s" if others else ""))
    prereq = REPO / "scripts" / "prerequisites.sh"
    kind_min = shell_assignment(prereq, "KIND_MIN")
    kubectl_min = shell_assignment(prereq, "KUBECTL_MIN")
    if kind_min != kind_release:
        problem(f"scripts/prerequisites.sh KIND_MIN={kind_min}, but k8s/kind-config.yaml pins kind v{kind_release}'s node image")
    docs = (REPO / "docs" / "kind.md").read_text()
    for tool, want in (("kind", f"v{kind_min}"), ("kubectl", kubectl_min)):
        m = re.search(rf"^\| {tool} ≥ (\S+) \|", docs, re.M)
        if not m:
            problem(f"docs/kind.md: no prerequisites row '| {tool} ≥ <version> |'")
        elif m.group(1) != want:
            problem(f"docs/kind.md asks for {tool} ≥ {m.group(1)}, scripts/prerequisites.sh for {want}")


def dockerfile_runs() -> list[tuple[str, list[str]]]:
    """(stage, RUN command) in order, with continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    stage, out = "", []
    for line in text.splitlines():
        words = line.strip().split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "FROM":
            stage = words[-1] if len(words) >= 4 and words[-2].upper() == "AS" else words[1]
            out.append((stage, ["FROM", *words[1:]]))
        elif words[0].upper() in ("RUN", "ARG"):
            out.append((stage, [words[0].upper(), *words[1:]]))
    return out


# The cargo flags that decide which packages, targets and features a build resolves.
SELECTION = {"--release", "--workspace", "--bins", "--all-targets", "--lib", "--tests",
             "--all-features", "--no-default-features"}
SELECTION_VALUE = {"--bin", "-p", "--package", "--features", "--profile", "--target"}


def selection(words: list[str]) -> set[str]:
    """The selection flags of the cargo command in a RUN line (up to its &&, ; or |)."""
    start = next(i for i, w in enumerate(words) if w == "cargo")
    words = words[start:]
    for sep in ("&&", "||", ";", "|"):
        if sep in words:
            words = words[: words.index(sep)]
    chosen, i = set(), 0
    while i < len(words):
        w = words[i]
        if w in SELECTION:
            chosen.add(w)
        elif w in SELECTION_VALUE and i + 1 < len(words):
            chosen.add(f"{w} {words[i + 1]}")
            i += 1
        elif "=" in w and w.split("=", 1)[0] in SELECTION_VALUE:
            chosen.add(w.replace("=", " ", 1))
        i += 1
    return chosen


def check_image_build() -> None:
    """The images compile the workspace once, with the features the cooked layer has."""
    runs = dockerfile_runs()
    cook = [w for _, w in runs if w[0] == "RUN" and "chef" in w and "cook" in w]
    builds = [(st, w) for st, w in runs if w[0] == "RUN" and "cargo" in w and "build" in w and "chef" not in w]
    if len(cook) != 1:
        problem(f"Dockerfile: expected one `cargo chef cook`, found {len(cook)}")
        return
    cooked = selection(cook[0])
    if not builds:
        problem("Dockerfile: no `cargo build` of the lab's binaries")
    for stage, words in builds:
        built = selection(words)
        if built != cooked:
            problem(f"Dockerfile stage {stage}: `cargo build` selects {sorted(built)} but `cargo chef cook` {sorted(cooked)}: "
                    "Cargo resolves other dependency features and recompiles what the cooked layer holds")
        # BIN declared before the build makes its layer (and everything after) differ per image.
        stage_lines = [w for st, w in runs if st == stage]
        before = stage_lines[: stage_lines.index(words)]
        if any(w[0] == "ARG" and w[1].split("=")[0] == "BIN" for w in before) or any("${BIN}" in x or "$BIN" in x for x in words):
            problem(f"Dockerfile stage {stage}: the build depends on BIN, so each image compiles it again; build every binary once and pick BIN afterwards")
    # Whatever else runs package.sh must package the shared build's binary (BOOTSTRAP=).
    for stage, words in runs:
        if words[0] == "RUN" and any("package.sh" in w for w in words) and not any(w.startswith("BOOTSTRAP=") for w in words):
            problem(f"Dockerfile stage {stage}: package.sh builds fraud-check again with its own `cargo build -p lambda-handler` (other features); pass BOOTSTRAP=target/release/bootstrap")
    images = (REPO / "scripts" / "images.sh").read_text()
    # Each `docker build` command, with its continuation lines (not the `say` that names it).
    for line in re.findall(r"^\s*docker build[^\n]*(?:\\\n[^\n]*)*", images, re.M):
        for flag in ("--provenance=false", "--sbom=false"):
            if flag not in line:
                problem(f"scripts/images.sh: `docker build` without {flag}: attestation manifests break `kind load` with the containerd image store")


# Bash features newer than the 3.2 macOS ships, and what to use instead.
BASH4 = [
    (r"\bmapfile\b|\breadarray\b", "mapfile/readarray (bash 4): use a while-read loop"),
    (r"\bdeclare\s+-[a-zA-Z]*A|\blocal\s+-[a-zA-Z]*A", "associative arrays (bash 4)"),
    (r"\$\{[A-Za-z_][A-Za-z_0-9]*(\[[^]]*\])?(,,?|\^\^?)\}", "${var,,} / ${var^^} case changes (bash 4): use tr"),
    (r"\bdeclare\s+-n\b|\blocal\s+-n\b", "namerefs (bash 4.3)"),
    (r"\[\[\s+-v\s", "[[ -v var ]] (bash 4.2): use ${var+x}"),
    (r"\|&", "|& (bash 4): use 2>&1 |"),
    (r"&>>", "&>> (bash 4): use >>file 2>&1"),
    (r"\bcoproc\b", "coproc (bash 4)"),
    (r"\bwait\s+-n\b", "wait -n (bash 4.3)"),
    (r"\$\{[A-Za-z_][A-Za-z_0-9]*\[-\d+\]\}", "negative array indices (bash 4.3)"),
    (r"\$EPOCHSECONDS|\$EPOCHREALTIME|\$SRANDOM", "bash 5 variables"),
    (r";;&|;&", "case fall-through ;& / ;;& (bash 4)"),
]


def lab_scripts() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for d in ("scripts", "localstack", "crates/lambda-handler") for p in (REPO / d).glob("*.sh"))


def check_bash32() -> None:
    for rel in lab_scripts():
        for n, line in enumerate((REPO / rel).read_text().splitlines(), 1):
            code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
            for pattern, why in BASH4:
                if re.search(pattern, code):
                    problem(f"{rel}:{n}: {why} (macOS ships bash 3.2)")


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
    r = run(["shellcheck", "--external-sources", *lab_scripts()])
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
    check_generated_copies()
    check_versions()
    check_image_build()
    check_bash32()
    check_collector_configs()
    check_tools()
    if problems:
        print(f"kind-lint: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("kind-lint: manifests, copies, versions, Dockerfile, scripts and Kind collector configs are clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
