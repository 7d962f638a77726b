"""A sandbox for running the Kind lab's make targets against the fakes of tests/kind/bin.

Each `FakeLab` is a temporary directory with
- a copy of the files the lab's scripts read (scripts/, localstack/, k8s/, prometheus/,
  grafana/, the Makefile, ...), so a test may change them and nothing it does touches the
  working tree;
- bin/: the fake docker, kind, kubectl, aws, awslocal, curl, uname and cargo, and links to
  the real tools the scripts use besides (bash, sed, make, readelf, ...). PATH is that
  directory alone, so a script can reach no real docker, cluster, cloud or cargo, and a
  test can take a tool away;
- state.json: the fake machine (Docker, kind clusters, LocalStack), which the test sets up
  first and reads afterwards, and state.json.calls.jsonl: every call made to a fake.

Whatever the tests need that is missing (a real tool, the real kubectl for kustomize, the
debug build of the Lambda's `bootstrap`) fails the test with what to install: nothing is
skipped.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAKES = ["docker", "kind", "kubectl", "aws", "awslocal", "curl", "uname", "cargo"]
# The real tools the scripts (and make, and the fakes) use.
SYSTEM_TOOLS = [
    "bash", "sh", "env", "make", "sed", "grep", "head", "tail", "cat", "od", "tr", "seq", "sleep",
    "mktemp", "rm", "mkdir", "cp", "mv", "cmp", "find", "sort", "dirname", "basename", "paste", "zip",
    "readelf", "tee", "wc", "awk", "true", "false", "ls", "chmod", "date", "cut", "uniq", "printf",
    "test", "xargs", "touch", "diff", "id",
]
# What the scripts read, copied into each sandbox.
COPIED = ["Makefile", "Cargo.toml", "Dockerfile", ".dockerignore", "scripts", "localstack", "k8s",
          "prometheus", "grafana", "docs/kind.md", "crates/lambda-handler/package.sh",
          "crates/lambda-handler/check-glibc.sh", "crates/traffic/src/cli.rs"]

DEFAULT_STATE = {
    "uname": {"s": "Linux", "m": "x86_64"},
    # Docker Engine 29: the containerd image store by default, API 1.52.
    "docker": {"version": "29.1.3", "api": "1.52", "containerd_store": True, "arch": "x86_64", "rootless": False,
               "daemon": True, "buildx": True, "socket": "unix:///var/run/docker.sock", "context_host": None,
               "images": {}, "containers": {}, "networks": ["bridge"], "builds": 0, "next_ip": 2},
    # Bumped by a test to stand for a change to the lab's code.
    "source_rev": 1,
    # Containers that exit as soon as they start.
    "crash": [],
    "kind": {"version": "v0.29.0", "clusters": {}},
    "kube": {"client_minor": "37"},
    "aws": {"major": 2, "functions": {}, "urls": {}},
}


class Missing(AssertionError):
    """A tool the tests need is not installed: a failure, never a skip."""


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def real_bootstrap() -> Path:
    """The debug build of the fraud-check Lambda, from `make test-build`."""
    path = target_dir() / "debug" / "bootstrap"
    if not path.is_file():
        raise Missing(f"no {path}: the fake cargo hands out the real Lambda binary; run `make test-build` "
                      "(make kind-test and make test do) with the same CARGO_TARGET_DIR")
    return path


def which(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        hint = "pip install -r .ci/requirements.txt" if tool == "kubectl" else "install it (binutils for readelf, zip for zip)"
        raise Missing(f"tests/kind needs `{tool}` on PATH: {hint}")
    return path


class FakeLab:
    def __init__(self, state: dict | None = None, without: tuple[str, ...] = (), repo: Path = REPO):
        self.dir = Path(tempfile.mkdtemp(prefix="otel-lab-fake-"))
        self.repo = self.dir / "repo"
        for rel in COPIED:
            src, dst = repo / rel, self.repo / rel
            if not src.exists():
                continue  # an older tree may lack a file; the tests that need it say so
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        for tool in FAKES:
            if tool not in without:
                (self.bin / tool).symlink_to(HERE / "bin" / tool)
        for tool in SYSTEM_TOOLS:
            if tool not in without:
                (self.bin / tool).symlink_to(which(tool))
        (self.bin / "python3").symlink_to(sys.executable)
        (self.dir / "home").mkdir()
        (self.dir / "tmp").mkdir()
        self.state_file = self.dir / "state.json"
        self.state_file.write_text(json.dumps(merge(DEFAULT_STATE, state or {}), indent=1))
        self.env = {
            "PATH": str(self.bin),
            "HOME": str(self.dir / "home"),
            "TMPDIR": str(self.dir / "tmp"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "CARGO_TARGET_DIR": str(self.dir / "target"),
            "FAKE_LAB_STATE": str(self.state_file),
            "FAKE_REAL_KUBECTL": which("kubectl"),
            "FAKE_ORIG_PATH": os.environ.get("PATH", ""),
            "FAKE_BOOTSTRAP": str(real_bootstrap()),
        }

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, argv: list[str], env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=self.repo, env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def make(self, *targets: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.run(["make", "--no-print-directory", *targets], env=env)

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def set_state(self, **changes) -> None:
        self.state_file.write_text(json.dumps(merge(self.state(), changes), indent=1))

    def calls(self, tool: str | None = None) -> list[list[str]]:
        path = Path(str(self.state_file) + ".calls.jsonl")
        if not path.exists():
            return []
        records = [json.loads(line) for line in path.read_text().splitlines()]
        return [r["argv"] for r in records if tool is None or r["tool"] == tool]

    def cluster(self, name: str = "otel-lab") -> dict:
        return self.state()["kind"]["clusters"][name]

    def objects(self, kind: str, name: str = "otel-lab") -> dict:
        return {k.split("/")[2]: o for k, o in self.cluster(name)["objects"].items() if k.startswith(kind + "/")}

    def container(self, name: str) -> dict:
        return self.state()["docker"]["containers"][name]


def explain(r: subprocess.CompletedProcess) -> str:
    return f"exit {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-6000:]}"
