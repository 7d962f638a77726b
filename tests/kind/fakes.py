"""Stand-ins for docker, kind, kubectl, aws, curl, uname and cargo, for tests/kind/.

Each tool in tests/kind/bin/ runs `main(<tool>)` here. They share one JSON state file
(FAKE_LAB_STATE, which a test writes first) and append every call to <state>.calls.jsonl,
so a test can run `make setup` end to end and then read what each tool was asked and what
the "machine" looks like afterwards.

They answer as the real tools do where the lab's scripts depend on it, including the ways
the real tools fail (the messages are theirs, shortened):

- docker: BuildKit attaches a provenance attestation unless --provenance=false; with the
  containerd image store (the default of Docker Engine 29 and Docker Desktop) the image id
  is then the digest of an index that also names the attestation, and `docker save`
  without --platform writes an archive that names a manifest it leaves out; `docker save
  --platform` needs API 1.48. A container listed in the state's "crash" stops at once
  (exit 1, no address). Rootless Docker has no /var/run/docker.sock to bind-mount. Host
  ports already published cannot be published again.
- kind: `kind create cluster` takes the config's `name` unless --name is given; `kind load`
  of an archive that names missing content fails as ctr does ("content digest ...: not
  found"); a cluster that does not exist has "no nodes".
- kubectl: `kustomize` is the real kubectl's (FAKE_REAL_KUBECTL), so is `apply -k`'s
  rendering; apply refuses what the API server refuses here (an EndpointSlice address that
  is not an IPv4 address, an object in a namespace that does not exist); `rollout status`
  times out when a pod's image is not on the node or its ConfigMap does not exist.
- aws (awslocal is `aws --endpoint-url=http://localhost.localstack.cloud:4566`): Lambda's
  create/update/get/list/wait/function-URL calls against LocalStack's state, `--query`
  with JMESPath and `--output text` as the CLI prints them (None for a missing field);
  `list-functions` leaves State out, as LocalStack and AWS do; v1 has no `logs tail`.
  Without a LocalStack endpoint it refuses, so a script can never reach real AWS.

Anything they do not know exits 99 with "fake <tool>: unsupported", so a test fails loudly
instead of passing over a call nobody checked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

UNSUPPORTED = 99


class Exit(Exception):
    def __init__(self, code: int, stderr: str = "", stdout: str = ""):
        super().__init__(stderr)
        self.code, self.stderr, self.stdout = code, stderr, stdout


def unsupported(tool: str, argv: list[str]) -> Exit:
    return Exit(UNSUPPORTED, f"fake {tool}: unsupported: {' '.join(argv)}\n")


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------- state

def state_path() -> Path:
    p = os.environ.get("FAKE_LAB_STATE")
    if not p:
        sys.stderr.write("fake tool run outside tests/kind (FAKE_LAB_STATE is not set)\n")
        sys.exit(UNSUPPORTED)
    return Path(p)


@contextlib.contextmanager
def locked_state():
    path = state_path()
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)


def log_call(tool: str, argv: list[str], stdin: str | None = None) -> None:
    path = state_path()
    record = {"tool": tool, "argv": argv, "env": {k: os.environ[k] for k in ("CLUSTER", "DOCKER_HOST") if k in os.environ}}
    if stdin is not None:
        record["stdin"] = stdin
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(str(path) + ".calls.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------- docker

LAB_BINS = {"collector", "order-service", "payment-service", "inventory-service"}
DOCKER_PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}


def docker_daemon(st: dict) -> dict:
    d = st["docker"]
    if not d["daemon"]:
        raise Exit(1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n")
    if d["rootless"]:
        host = os.environ.get("DOCKER_HOST") or d.get("context_host")
        if host != d["socket"]:
            raise Exit(1, f"Cannot connect to the Docker daemon at {host or 'unix:///var/run/docker.sock'}. Is the docker daemon running?\n")
    return d


def api_at_least(d: dict, minor: int) -> bool:
    return int(d["api"].split(".")[1]) >= minor


def take(argv: list[str], i: int, name: str) -> tuple[str, int]:
    """The value of option argv[i] (`--x v` or `--x=v`) and the next index."""
    if "=" in argv[i] and argv[i].startswith("--"):
        return argv[i].split("=", 1)[1], i + 1
    if i + 1 >= len(argv):
        raise Exit(125, f"flag needs an argument: {name}\n")
    return argv[i + 1], i + 2


def docker_format(template: str, obj: dict) -> str:
    """The handful of Go templates the lab's scripts use, evaluated on `obj`."""
    m = re.fullmatch(r'\{\{\(index \.NetworkSettings\.Networks "([^"]+)"\)\.IPAddress\}\}', template)
    if m:
        net = obj.get("networks", {}).get(m.group(1))
        if net is None:
            raise Exit(1, 'template parsing error: template: :1:3: executing "" at <index .NetworkSettings.Networks>: '
                          "nil pointer evaluating *network.EndpointSettings.IPAddress\n")
        return net["ip"]
    m = re.fullmatch(r'\{\{index \.Config\.Labels "([^"]+)"\}\}', template)
    if m:
        return obj.get("labels", {}).get(m.group(1), "<no value>")
    simple = {
        "{{.State.Status}}": lambda o: o["status"],
        "{{.State.Running}}": lambda o: "true" if o["status"] == "running" else "false",
        "{{.State.ExitCode}}": lambda o: str(o["exit_code"]),
        "{{.Id}}": lambda o: o["id"],
        "{{.Name}}": lambda o: "/" + o["name"],
    }
    if template in simple:
        return simple[template](obj)
    raise Exit(UNSUPPORTED, f"fake docker: unsupported --format {template}\n")


def docker_main(argv: list[str]) -> str:
    if not argv:
        raise unsupported("docker", argv)
    cmd, rest = argv[0], argv[1:]
    if cmd == "buildx" and rest[:1] == ["version"]:
        with locked_state() as st:
            if not st["docker"]["buildx"]:
                raise Exit(1, "docker: 'buildx' is not a docker command.\n")
        return "github.com/docker/buildx v0.29.1 a1b2c3d\n"
    if cmd == "info":
        with locked_state() as st:
            d = docker_daemon(st)
            fmt = None
            if rest[:1] == ["--format"] and len(rest) == 2:
                fmt = rest[1]
            elif rest:
                raise unsupported("docker", argv)
            info = {
                "{{.Architecture}}": d["arch"],
                "{{.ServerVersion}}": d["version"],
                "{{.SecurityOptions}}": "[name=seccomp,profile=builtin" + (" name=rootless" if d["rootless"] else "") + " name=cgroupns]",
                "{{.OperatingSystem}}": "Ubuntu 24.04 LTS",
            }
            if fmt is None:
                return f"Server:\n Server Version: {d['version']}\n Architecture: {d['arch']}\n"
            if fmt not in info:
                raise Exit(UNSUPPORTED, f"fake docker: unsupported info --format {fmt}\n")
            return info[fmt] + "\n"
    if cmd == "version":
        with locked_state() as st:
            d = docker_daemon(st)
            if rest == ["--format", "{{.Server.APIVersion}}"]:
                return d["api"] + "\n"
            if rest == ["--format", "{{.Server.Version}}"]:
                return d["version"] + "\n"
            raise unsupported("docker", argv)
    if cmd == "context" and rest[:1] == ["inspect"]:
        with locked_state() as st:
            if rest[1:] == ["--format", "{{.Endpoints.docker.Host}}"]:
                return (st["docker"].get("context_host") or "unix:///var/run/docker.sock") + "\n"
            raise unsupported("docker", argv)
    if cmd == "build":
        return docker_build(rest)
    if cmd == "tag" and len(rest) == 2:
        with locked_state() as st:
            d = docker_daemon(st)
            src = d["images"].get(rest[0])
            if src is None:
                raise Exit(1, f"Error response from daemon: No such image: {rest[0]}\n")
            d["images"][rest[1]] = dict(src)
        return ""
    if cmd == "image" and rest[:1] == ["inspect"]:
        return docker_image_inspect(rest[1:])
    if cmd == "save":
        return docker_save(rest)
    if cmd == "run":
        return docker_run(rest)
    if cmd == "container" and rest[:1] == ["inspect"]:
        return docker_container_inspect(rest[1:])
    if cmd == "start" and len(rest) == 1:
        with locked_state() as st:
            c = docker_daemon(st)["containers"].get(rest[0])
            if c is None:
                raise Exit(1, f"Error response from daemon: No such container: {rest[0]}\n")
            c["status"], c["exit_code"] = "running", 0
        return ""
    if cmd == "rm":
        force = False
        names = []
        for a in rest:
            if a in ("-f", "--force"):
                force = True
            elif a.startswith("-"):
                raise unsupported("docker", argv)
            else:
                names.append(a)
        errors = []
        with locked_state() as st:
            d = docker_daemon(st)
            for n in names:
                key = n if n in d["containers"] else next((k for k, c in d["containers"].items() if c["id"].startswith(n)), None)
                if key is None:
                    if not force:
                        errors.append(f"Error response from daemon: No such container: {n}\n")
                    continue
                if d["containers"][key]["status"] == "running" and not force:
                    errors.append(f"Error response from daemon: cannot remove container \"/{key}\": container is running: stop the container before removing or force remove\n")
                    continue
                del d["containers"][key]
        if errors:
            raise Exit(1, "".join(errors))
        return "".join(n + "\n" for n in names)
    if cmd == "ps":
        return docker_ps(rest)
    if cmd == "logs":
        name = rest[-1] if rest else ""
        with locked_state() as st:
            c = docker_daemon(st)["containers"].get(name)
            if c is None:
                raise Exit(1, f"Error response from daemon: No such container: {name}\n")
            return "".join(line + "\n" for line in c["logs"])
    raise unsupported("docker", argv)


def docker_build(argv: list[str]) -> str:
    build_args, tags, target, output, provenance, sbom, context = {}, [], None, None, None, None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--build-arg" or a.startswith("--build-arg="):
            v, i = take(argv, i, a)
            k, _, val = v.partition("=")
            build_args[k] = val
        elif a in ("--tag", "-t") or a.startswith("--tag="):
            v, i = take(argv, i, a)
            tags.append(v)
        elif a == "--target" or a.startswith("--target="):
            target, i = take(argv, i, a)
        elif a in ("--output", "-o") or a.startswith("--output="):
            output, i = take(argv, i, a)
        elif a == "--provenance" or a.startswith("--provenance="):
            provenance, i = take(argv, i, a)
        elif a == "--sbom" or a.startswith("--sbom="):
            sbom, i = take(argv, i, a)
        elif a.startswith("-"):
            raise unsupported("docker", ["build", *argv])
        else:
            context, i = a, i + 1
    if not context or not Path(context, "Dockerfile").is_file():
        raise Exit(1, f"ERROR: failed to build: resolve : lstat {context}/Dockerfile: no such file or directory\n")
    with locked_state() as st:
        d = docker_daemon(st)
        if not d["buildx"]:
            raise Exit(1, "ERROR: BuildKit is enabled but the buildx component is missing or broken.\n")
        d["builds"] += 1
        rev = st["source_rev"]
        if target == "lambda-zip":
            if not output or not output.startswith("type=local,dest="):
                raise unsupported("docker", ["build", *argv])
            dest = Path(output.split("dest=", 1)[1])
            dest.mkdir(parents=True, exist_ok=True)
            for zip_name in ("bootstrap.zip", "fulfilment.zip"):
                with zipfile.ZipFile(dest / zip_name, "w") as z:
                    info = zipfile.ZipInfo("bootstrap")
                    info.external_attr = 0o100755 << 16
                    z.writestr(info, f"fake {zip_name}, source revision {rev}")
            return ""
        if target is not None or output is not None:
            raise unsupported("docker", ["build", *argv])
        binary = build_args.get("BIN", "")
        if binary not in LAB_BINS:
            raise Exit(1, "pass --build-arg BIN=<collector|order-service|payment-service|inventory-service>\n"
                          'ERROR: failed to build: process "/bin/sh -c test -n "${BIN}"" did not complete successfully: exit code: 1\n')
        # BuildKit's default: a provenance attestation (mode=min) with the build's times.
        # (The classic image store keeps no attestations: only the containerd store has them.)
        attestations = d["containerd_store"] and (
            (provenance or "mode=min") not in ("false", "0") or (sbom or "false") not in ("false", "0"))
        content = f"{binary}|rev{rev}|{DOCKER_PLATFORM[d['arch']]}"
        image = {
            "bin": binary, "rev": rev, "platform": DOCKER_PLATFORM[d["arch"]],
            "attestations": bool(attestations),
            # With the containerd store the id is the index's digest, which covers the
            # attestation and so the build's time.
            "id": sha(content + (f"|attested build {d['builds']}" if attestations else "")),
        }
        for t in tags:
            d["images"][t] = dict(image)
    return f"#1 naming to {', '.join(tags)} done\n"


def docker_image_inspect(argv: list[str]) -> str:
    fmt, refs, i = None, [], 0
    while i < len(argv):
        if argv[i] in ("--format", "-f") or argv[i].startswith("--format="):
            fmt, i = take(argv, i, argv[i])
        else:
            refs.append(argv[i])
            i += 1
    with locked_state() as st:
        d = docker_daemon(st)
        out = []
        for r in refs:
            img = d["images"].get(r)
            if img is None:
                raise Exit(1, f"Error response from daemon: No such image: {r}\n")
            out.append(docker_format(fmt, img) if fmt else json.dumps([{"Id": img["id"], "RepoTags": [r]}]))
    return "".join(o + "\n" for o in out)


def docker_save(argv: list[str]) -> str:
    output, platform, refs, i = None, None, [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("--output", "-o") or a.startswith("--output="):
            output, i = take(argv, i, a)
        elif a == "--platform" or a.startswith("--platform="):
            platform, i = take(argv, i, a)
        elif a.startswith("-"):
            raise unsupported("docker", ["save", *argv])
        else:
            refs.append(a)
            i += 1
    if output is None:
        raise Exit(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
    with locked_state() as st:
        d = docker_daemon(st)
        if platform is not None and not api_at_least(d, 48):
            raise Exit(1, f'"--platform" requires API version 1.48, but the Docker daemon API version is {d["api"]}\n')
        images = []
        for r in refs:
            img = d["images"].get(r)
            if img is None:
                raise Exit(1, f"Error response from daemon: No such image: {r}\n")
            if platform is not None and platform != img["platform"]:
                raise Exit(1, f"Error response from daemon: no suitable export target found for platform {platform}\n")
            # Without --platform, the containerd store exports the whole index, attestation
            # manifest included, but not that manifest's content.
            complete = not (d["containerd_store"] and img["attestations"] and platform is None)
            missing = None if complete else sha(img["id"] + "|attestation manifest")
            images.append({"ref": r, "id": img["id"], "complete": complete, "missing": missing})
    Path(output).write_text(json.dumps({"fake_docker_save": images}))
    return ""


def docker_run(argv: list[str]) -> str:
    opts = {"name": None, "network": "bridge", "publish": [], "env": {}, "volumes": [], "labels": {}, "detach": False}
    i = 0
    valued = {"--memory", "--cpus", "--cap-drop", "--security-opt", "--user", "--tmpfs", "--restart"}
    flags = {"--read-only", "--rm", "--init"}
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        key = a.split("=", 1)[0]
        if key in ("--detach", "-d"):
            opts["detach"] = True
            i += 1
        elif key == "--name":
            opts["name"], i = take(argv, i, a)
        elif key in ("--network", "--net"):
            opts["network"], i = take(argv, i, a)
        elif key in ("--publish", "-p"):
            v, i = take(argv, i, a)
            opts["publish"].append(v)
        elif key in ("--env", "-e"):
            v, i = take(argv, i, a)
            k, eq, val = v.partition("=")
            if eq:
                opts["env"][k] = val
            elif k in os.environ:
                opts["env"][k] = os.environ[k]
        elif key in ("--volume", "-v"):
            v, i = take(argv, i, a)
            opts["volumes"].append(v)
        elif key in ("--label", "-l"):
            v, i = take(argv, i, a)
            k, _, val = v.partition("=")
            opts["labels"][k] = val
        elif key in valued:
            _, i = take(argv, i, a)
        elif key in flags:
            i += 1
        else:
            raise unsupported("docker", ["run", *argv])
    if i >= len(argv):
        raise Exit(125, '"docker run" requires at least 1 argument.\n')
    image_ref, args = argv[i], argv[i + 1:]
    name = opts["name"]
    with locked_state() as st:
        d = docker_daemon(st)
        if name in d["containers"]:
            raise Exit(125, f'docker: Error response from daemon: Conflict. The container name "/{name}" is already in use by container "{d["containers"][name]["id"]}". '
                            "You have to remove (or rename) that container to be able to reuse that name.\n")
        img = d["images"].get(image_ref)
        if img is None:
            if image_ref.startswith("otel-lab/"):
                raise Exit(125, f"Unable to find image '{image_ref}' locally\ndocker: Error response from daemon: pull access denied for "
                                f"{image_ref.split(':')[0]}, repository does not exist or may require 'docker login'.\n")
            img = {"id": sha(image_ref), "platform": DOCKER_PLATFORM[d["arch"]], "attestations": False, "pulled": True}
            d["images"][image_ref] = img
        for v in opts["volumes"]:
            src = v.split(":", 1)[0]
            if src == "/var/run/docker.sock" and d["rootless"]:
                raise Exit(125, "docker: Error response from daemon: error while creating mount source path '/var/run/docker.sock': "
                                "mkdir /var/run/docker.sock: permission denied.\n")
        networks = {}
        net = opts["network"]
        if net.startswith("container:"):
            owner = d["containers"].get(net.split(":", 1)[1])
            if owner is None or owner["status"] != "running":
                raise Exit(125, f"docker: Error response from daemon: cannot join network of a non running container: {net.split(':', 1)[1]}.\n")
        elif net not in d["networks"] and net != "bridge":
            raise Exit(125, f"docker: Error response from daemon: network {net} not found.\n")
        ports = []
        for p in opts["publish"]:
            parts = p.split(":")
            host_ip, host_port, container_port = ("0.0.0.0", *parts) if len(parts) == 2 else parts
            ports.append({"host_ip": host_ip, "host_port": int(host_port), "container_port": int(container_port.split("/")[0])})
        check_ports_free(d, ports)
        crashed = name in st["crash"]
        if not net.startswith("container:"):
            ip = "" if crashed else f"172.18.0.{d['next_ip']}"
            if not crashed:
                d["next_ip"] += 1
            networks[net] = {"ip": ip}
        cid = hashlib.sha256(f"{name}|{d['next_ip']}|{len(d['containers'])}".encode()).hexdigest()
        d["containers"][name] = {
            "name": name, "id": cid, "image": image_ref, "image_id": img["id"],
            "status": "exited" if crashed else "running", "exit_code": 1 if crashed else 0,
            "networks": networks, "network_mode": net, "ports": [] if crashed else ports,
            "env": opts["env"], "volumes": opts["volumes"], "labels": opts["labels"], "args": args,
            "logs": ["thread 'main' panicked at src/main.rs: cannot open /data/inventory.db: read-only file system"] if crashed
            else [f"{name} started"],
        }
    return cid + "\n" if opts["detach"] else ""


def check_ports_free(d: dict, ports: list[dict]) -> None:
    for p in ports:
        for c in d["containers"].values():
            if c["status"] != "running":
                continue
            for q in c["ports"]:
                same_ip = "0.0.0.0" in (p["host_ip"], q["host_ip"]) or p["host_ip"] == q["host_ip"]
                if same_ip and p["host_port"] == q["host_port"]:
                    raise Exit(125, f"docker: Error response from daemon: driver failed programming external connectivity: "
                                    f"Bind for {p['host_ip']}:{p['host_port']} failed: port is already allocated.\n")


def docker_container_inspect(argv: list[str]) -> str:
    fmt, names, i = None, [], 0
    while i < len(argv):
        if argv[i] in ("--format", "-f") or argv[i].startswith("--format="):
            fmt, i = take(argv, i, argv[i])
        else:
            names.append(argv[i])
            i += 1
    with locked_state() as st:
        d = docker_daemon(st)
        out = []
        for n in names:
            c = d["containers"].get(n)
            if c is None:
                raise Exit(1, f"Error: No such container: {n}\n")
            out.append(docker_format(fmt, c) if fmt else json.dumps([{"Name": "/" + n, "State": {"Status": c["status"]}}]))
    return "".join(o + "\n" for o in out)


def docker_ps(argv: list[str]) -> str:
    show_all, quiet, name_filter, fmt, i = False, False, None, None, 0
    while i < len(argv):
        a = argv[i]
        if a in ("--all", "-a"):
            show_all, i = True, i + 1
        elif a in ("--quiet", "-q"):
            quiet, i = True, i + 1
        elif a in ("--filter", "-f") or a.startswith("--filter="):
            v, i = take(argv, i, a)
            if not v.startswith("name="):
                raise unsupported("docker", ["ps", *argv])
            name_filter = v[5:]
        elif a == "--format" or a.startswith("--format="):
            fmt, i = take(argv, i, a)
        else:
            raise unsupported("docker", ["ps", *argv])
    with locked_state() as st:
        d = docker_daemon(st)
        rows = [c for c in d["containers"].values()
                if (show_all or c["status"] == "running") and (name_filter is None or re.search(name_filter, c["name"]))]
    if quiet:
        return "".join(c["id"][:12] + "\n" for c in rows)
    # Docker reads "\t" in a format as a tab (the scripts pass it literally).
    if fmt is not None and fmt.replace("\\t", "\t") == "table {{.Names}}\t{{.Image}}\t{{.Status}}":
        lines = ["NAMES\tIMAGE\tSTATUS"]
        for c in rows:
            status = "Up 1 minute" if c["status"] == "running" else f"Exited ({c['exit_code']}) 1 minute ago"
            lines.append(f"{c['name']}\t{c['image']}\t{status}")
        return "\n".join(lines) + "\n"
    if fmt is None:
        return "CONTAINER ID\tIMAGE\tNAMES\n" + "".join(f"{c['id'][:12]}\t{c['image']}\t{c['name']}\n" for c in rows)
    raise Exit(UNSUPPORTED, f"fake docker: unsupported ps --format {fmt}\n")


# ---------------------------------------------------------------------------- kind

def ctr_error(node: str, digest: str) -> Exit:
    return Exit(1, f'ERROR: failed to load image: command "docker exec --privileged -i {node} ctr --namespace=k8s.io images import '
                   f'--all-platforms --digests --snapshotter=overlayfs -" failed with error: exit status 1\n'
                   f"Command Output: ctr: content digest {digest}: not found\n")


def kind_main(argv: list[str]) -> str:
    import yaml

    if argv == ["version"]:
        with locked_state() as st:
            return f"kind {st['kind']['version']} go1.24.2 linux/amd64\n"
    if argv[:2] == ["get", "clusters"]:
        with locked_state() as st:
            names = sorted(st["kind"]["clusters"])
        if not names:
            sys.stderr.write("No kind clusters found.\n")
        return "".join(n + "\n" for n in names)

    def options(args: list[str], valued: set[str]) -> tuple[dict, list[str]]:
        opts, pos, i = {}, [], 0
        while i < len(args):
            key = args[i].split("=", 1)[0]
            if key in valued:
                opts[key], i = take(args, i, key)
            elif args[i].startswith("-"):
                raise unsupported("kind", argv)
            else:
                pos.append(args[i])
                i += 1
        return opts, pos

    if argv[:2] == ["create", "cluster"]:
        opts, pos = options(argv[2:], {"--name", "--config", "--wait", "--image"})
        config = yaml.safe_load(Path(opts["--config"]).read_text()) if "--config" in opts else {}
        name = opts.get("--name") or config.get("name") or "kind"
        with locked_state() as st:
            d = docker_daemon(st)
            if name in st["kind"]["clusters"]:
                raise Exit(1, f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"\n')
            node = f"{name}-control-plane"
            ports = []
            nodes = config.get("nodes") or [{"role": "control-plane"}]
            for m in nodes[0].get("extraPortMappings", []):
                ports.append({"host_ip": m.get("listenAddress", "0.0.0.0"), "host_port": m["hostPort"], "container_port": m["containerPort"]})
            ports.append({"host_ip": "127.0.0.1", "host_port": 40000 + len(st["kind"]["clusters"]), "container_port": 6443})
            check_ports_free(d, ports)
            if "kind" not in d["networks"]:
                d["networks"].append("kind")
            d["containers"][node] = {
                "name": node, "id": hashlib.sha256(node.encode()).hexdigest(), "image": nodes[0].get("image", "kindest/node"),
                "image_id": sha(nodes[0].get("image", "kindest/node")), "status": "running", "exit_code": 0,
                "networks": {"kind": {"ip": f"172.18.0.{d['next_ip']}"}}, "network_mode": "kind", "ports": ports,
                "env": {}, "volumes": [], "args": [], "logs": ["kubelet started"],
            }
            d["next_ip"] += 1
            st["kind"]["clusters"][name] = {"config": config, "node_images": {}, "objects": {}, "loads": []}
        return f'Creating cluster "{name}" ...\nSet kubectl context to "kind-{name}"\n'
    if argv[:2] == ["delete", "cluster"]:
        opts, _ = options(argv[2:], {"--name"})
        name = opts.get("--name", "kind")
        with locked_state() as st:
            st["kind"]["clusters"].pop(name, None)
            st["docker"]["containers"].pop(f"{name}-control-plane", None)
        return f'Deleting cluster "{name}" ...\n'
    if argv[:2] in (["load", "docker-image"], ["load", "image-archive"]):
        opts, pos = options(argv[2:], {"--name", "--nodes"})
        name = opts.get("--name", "kind")
        with locked_state() as st:
            d = docker_daemon(st)
            cluster = st["kind"]["clusters"].get(name)
            if cluster is None:
                raise Exit(1, f'ERROR: no nodes found for cluster "{name}"\n')
            node = f"{name}-control-plane"
            if argv[1] == "docker-image":
                # kind saves the image with `docker save` (no --platform) and imports that.
                for ref in pos:
                    img = d["images"].get(ref)
                    if img is None:
                        raise Exit(1, f'ERROR: image: "{ref}" not present locally\n')
                    if d["containerd_store"] and img["attestations"]:
                        raise ctr_error(node, sha(img["id"] + "|attestation manifest"))
                    cluster["node_images"][ref] = img["id"]
                    cluster["loads"].append(ref)
            else:
                for archive in pos:
                    try:
                        saved = json.loads(Path(archive).read_text())["fake_docker_save"]
                    except (OSError, ValueError, KeyError):
                        raise Exit(1, f"ERROR: failed to load image: ctr: failed to read {archive}: not a docker save archive\n")
                    for img in saved:
                        if not img["complete"]:
                            raise ctr_error(node, img["missing"])
                    for img in saved:
                        cluster["node_images"][img["ref"]] = img["id"]
                        cluster["loads"].append(img["ref"])
        return ""
    raise unsupported("kind", argv)


# ---------------------------------------------------------------------------- kubectl

CLUSTER_SCOPED = {"Namespace"}
RESOURCE = {
    "Deployment": "deployment.apps", "DaemonSet": "daemonset.apps", "Service": "service", "ConfigMap": "configmap",
    "Namespace": "namespace", "EndpointSlice": "endpointslice.discovery.k8s.io",
    "HorizontalPodAutoscaler": "horizontalpodautoscaler.autoscaling", "PodDisruptionBudget": "poddisruptionbudget.policy",
}
# Strategic merge keys of the lists `kubectl patch` merges instead of replacing.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name", "volumeMounts": "mountPath",
              "ports": "containerPort", "hostAliases": "ip"}


def strategic_merge(live, patch, key=None):
    if isinstance(live, dict) and isinstance(patch, dict):
        out = dict(live)
        for k, v in patch.items():
            out[k] = strategic_merge(live.get(k), v, k) if k in live else v
        return out
    if isinstance(live, list) and isinstance(patch, list) and key in MERGE_KEYS:
        mk = MERGE_KEYS[key]
        out = list(live)
        for item in patch:
            idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(mk) == item.get(mk)), None)
            if idx is None:
                out.append(item)
            else:
                out[idx] = strategic_merge(out[idx], item)
        return out
    return patch


def real_kubectl(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    real = os.environ.get("FAKE_REAL_KUBECTL")
    if not real:
        raise Exit(UNSUPPORTED, "fake kubectl: FAKE_REAL_KUBECTL is not set\n")
    env = dict(os.environ, PATH=os.environ.get("FAKE_ORIG_PATH", os.environ["PATH"]))
    return subprocess.run([real, *args], input=stdin, capture_output=True, text=True, env=env)


def kube_cluster(st: dict, context: str | None) -> dict:
    if context is None:
        raise Exit(1, "error: the lab's scripts name a context (--context) on every call; this one names none\n")
    name = context[len("kind-"):] if context.startswith("kind-") else None
    cluster = st["kind"]["clusters"].get(name) if name else None
    if cluster is None:
        raise Exit(1, f'error: context "{context}" does not exist\n')
    return cluster


def obj_key(o: dict, namespace: str) -> str:
    kind = o["kind"]
    ns = "" if kind in CLUSTER_SCOPED else o["metadata"].get("namespace") or namespace
    return f"{kind}/{ns}/{o['metadata']['name']}"


def validate(o: dict, cluster: dict, namespace: str, pending_ns: set[str]) -> str | None:
    kind, name = o.get("kind"), o.get("metadata", {}).get("name")
    if not kind or not o.get("apiVersion") or not name:
        return "error: error validating data: [apiVersion not set, kind not set, metadata.name not set]"
    if kind not in CLUSTER_SCOPED:
        ns = o["metadata"].get("namespace") or namespace
        if f"Namespace//{ns}" not in cluster["objects"] and ns not in pending_ns and ns != "default":
            return f'Error from server (NotFound): error when creating "STDIN": namespaces "{ns}" not found'
    if kind == "EndpointSlice":
        for i, ep in enumerate(o.get("endpoints") or []):
            for j, addr in enumerate(ep.get("addresses") or []):
                try:
                    ipaddress.IPv4Address(addr)
                except ValueError:
                    return (f'The EndpointSlice "{name}" is invalid: endpoints[{i}].addresses[{j}]: Invalid value: "{addr}": '
                            "must be a valid IPv4 address")
    return None


def kubectl_main(argv: list[str]) -> str:
    import yaml

    context, namespace, args, i = None, "default", [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--context" or a.startswith("--context="):
            context, i = take(argv, i, a)
        elif a in ("--namespace", "-n") or a.startswith("--namespace="):
            namespace, i = take(argv, i, a)
        else:
            args.append(a)
            i += 1
    if not args:
        raise unsupported("kubectl", argv)
    cmd, rest = args[0], args[1:]
    if cmd == "version" and "--client" in rest:
        with locked_state() as st:
            minor = st["kube"]["client_minor"]
        if "-o" in rest or "--output=json" in rest:
            return json.dumps({"clientVersion": {"major": "1", "minor": minor, "gitVersion": f"v1.{minor}.1"},
                               "kustomizeVersion": "v5.8.1"}, indent=2) + "\n"
        return f"Client Version: v1.{minor}.1\nKustomize Version: v5.8.1\n"
    if cmd == "kustomize":
        r = real_kubectl(args)
        if r.returncode:
            raise Exit(r.returncode, r.stderr, r.stdout)
        return r.stdout
    if cmd == "apply":
        text = None
        if rest[:2] == ["-f", "-"]:
            text = sys.stdin.read()
        elif rest[:1] == ["-f"] and len(rest) == 2:
            text = Path(rest[1]).read_text()
        elif rest[:1] == ["-k"] and len(rest) == 2:
            r = real_kubectl(["kustomize", rest[1]])
            if r.returncode:
                raise Exit(1, r.stderr)
            text = r.stdout
        else:
            raise unsupported("kubectl", argv)
        docs = [d for d in yaml.safe_load_all(text) if d]
        out = []
        with locked_state() as st:
            cluster = kube_cluster(st, context)
            pending_ns = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
            for o in docs:
                err = validate(o, cluster, namespace, pending_ns)
                if err:
                    # Objects before this one stay applied, as with the real kubectl.
                    sys.stdout.write("".join(out))
                    raise Exit(1, err + "\n")
                key = obj_key(o, namespace)
                if key.split("/")[1]:
                    o["metadata"]["namespace"] = key.split("/")[1]
                old = cluster["objects"].get(key)
                verb = "created" if old is None else ("unchanged" if old == o else "configured")
                cluster["objects"][key] = o
                out.append(f"{RESOURCE.get(o['kind'], o['kind'].lower())}/{o['metadata']['name']} {verb}\n")
        return "".join(out)
    if cmd == "patch":
        if len(rest) < 2:
            raise unsupported("kubectl", argv)
        kind_name, name, patch, ptype, i = rest[0], rest[1], None, "strategic", 2
        while i < len(rest):
            if rest[i] in ("--patch", "-p") or rest[i].startswith("--patch="):
                patch, i = take(rest, i, rest[i])
            elif rest[i] == "--type" or rest[i].startswith("--type="):
                ptype, i = take(rest, i, rest[i])
            else:
                raise unsupported("kubectl", argv)
        kinds = {"deployment": "Deployment", "daemonset": "DaemonSet"}
        if kind_name not in kinds or ptype != "strategic" or patch is None:
            raise unsupported("kubectl", argv)
        with locked_state() as st:
            cluster = kube_cluster(st, context)
            key = f"{kinds[kind_name]}/{namespace}/{name}"
            if key not in cluster["objects"]:
                raise Exit(1, f'Error from server (NotFound): deployments.apps "{name}" not found\n')
            cluster["objects"][key] = strategic_merge(cluster["objects"][key], json.loads(patch))
        return f"{RESOURCE[kinds[kind_name]]}/{name} patched\n"
    if cmd == "rollout" and rest[:1] == ["status"]:
        target = next((r for r in rest[1:] if not r.startswith("-")), "")
        kind_name, _, name = target.partition("/")
        kinds = {"deployment": "Deployment", "daemonset": "DaemonSet"}
        if kind_name not in kinds:
            raise unsupported("kubectl", argv)
        with locked_state() as st:
            cluster = kube_cluster(st, context)
            o = cluster["objects"].get(f"{kinds[kind_name]}/{namespace}/{name}")
            if o is None:
                raise Exit(1, f'Error from server (NotFound): {RESOURCE[kinds[kind_name]].split(".")[0]}s.apps "{name}" not found\n')
            spec = o["spec"]["template"]["spec"]
            problems = []
            for c in spec.get("initContainers", []) + spec["containers"]:
                # The lab's images are side-loaded (IfNotPresent); others pull from their registry.
                if c["image"].startswith("otel-lab/") and c["image"] not in cluster["node_images"]:
                    problems.append(f"ErrImageNeverPull/ImagePullBackOff: {c['image']} is not on the node")
            configmaps = {k.split("/")[2] for k in cluster["objects"] if k.startswith(f"ConfigMap/{namespace}/")}
            for v in spec.get("volumes", []):
                names = [v["configMap"]["name"]] if "configMap" in v else [
                    s["configMap"]["name"] for s in v.get("projected", {}).get("sources", []) if "configMap" in s]
                problems += [f'MountVolume.SetUp failed: configmap "{n}" not found' for n in names if n not in configmaps]
        if problems:
            raise Exit(1, "".join(f"  ({p})\n" for p in problems) + "error: timed out waiting for the condition\n",
                       f'Waiting for {kind_name} "{name}" rollout to finish: 0 of 1 updated replicas are available...\n')
        return f'{kind_name} "{name}" successfully rolled out\n'
    if cmd == "get":
        with locked_state() as st:
            cluster = kube_cluster(st, context)
            rows = [k for k in sorted(cluster["objects"]) if k.split("/")[1] == namespace]
        return "NAME\n" + "".join(f"{RESOURCE.get(k.split('/')[0], k.split('/')[0]).split('.')[0]}/{k.split('/')[2]}\n" for k in rows)
    if cmd == "logs":
        with locked_state() as st:
            kube_cluster(st, context)
        return "[pod/fake] collector started\n"
    raise unsupported("kubectl", argv)


# ---------------------------------------------------------------------------- aws

LOCALSTACK_ENDPOINTS = ("http://localhost.localstack.cloud:4566", "http://localhost:4566", "http://127.0.0.1:4566")


def aws_text(v) -> str:
    """`--output text` as the AWS CLI prints it: rows of tab-separated scalars, None for null."""
    def scalar(x):
        if x is None:
            return "None"
        if isinstance(x, bool):
            return "True" if x else "False"
        return str(x)
    if isinstance(v, list):
        if all(not isinstance(x, (list, dict)) for x in v):
            return "\t".join(scalar(x) for x in v)
        return "\n".join(aws_text(x) for x in v)
    if isinstance(v, dict):
        scalars = [scalar(v[k]) for k in sorted(v) if not isinstance(v[k], (list, dict))]
        nested = [aws_text(v[k]) for k in sorted(v) if isinstance(v[k], (list, dict))]
        return "\n".join(["\t".join(scalars)] * bool(scalars) + nested)
    return scalar(v)


def aws_main(argv: list[str]) -> str:
    import jmespath

    endpoint, query, output, args, i = None, None, "json", [], 0
    while i < len(argv):
        a = argv[i]
        key = a.split("=", 1)[0]
        if key == "--endpoint-url":
            endpoint, i = take(argv, i, a)
        elif key == "--query":
            query, i = take(argv, i, a)
        elif key == "--output":
            output, i = take(argv, i, a)
        elif key in ("--region", "--profile"):
            _, i = take(argv, i, a)
        elif key in ("--no-cli-pager", "--no-paginate"):
            i += 1
        else:
            args.append(a)
            i += 1
    with locked_state() as st:
        major = st["aws"]["major"]
    if args == ["--version"]:
        return ("aws-cli/2.27.50 Python/3.13.4 Linux/6.8.0 exe/x86_64.ubuntu.24\n" if major == 2
                else "aws-cli/1.40.38 Python/3.12.3 Linux/6.8.0 botocore/1.38.39\n")
    usage_exit = 252 if major == 2 else 2
    if args[:2] == ["logs", "tail"] and major == 1:
        raise Exit(usage_exit, "usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
                               "To see help text, you can run:\n\n  aws help\n  aws <command> help\n  aws <command> <subcommand> help\n"
                               "aws: error: argument operation: Invalid choice, valid choices are:\n\nassociate-kms-key | cancel-export-task\n")
    if endpoint is None or endpoint.rstrip("/") not in LOCALSTACK_ENDPOINTS:
        raise Exit(UNSUPPORTED, f"fake aws: refusing a call that does not go to LocalStack (endpoint {endpoint}): {' '.join(argv)}\n")
    error_exit = 254 if major == 2 else 255
    with locked_state() as st:
        ls = st["docker"]["containers"].get("otel-lab-localstack")
        if ls is None or ls["status"] != "running":
            raise Exit(255, f'\nCould not connect to the endpoint URL: "{endpoint}/2015-03-31/functions/"\n')
        result = aws_call(st, args, error_exit)
    if args[:2] == ["logs", "tail"]:
        return result
    if query is not None and result is not None:
        result = jmespath.search(query, result)
    if result is None and query is None:
        return ""
    if output == "text":
        return aws_text(result) + "\n"
    if output == "json":
        return json.dumps(result, indent=4) + "\n"
    raise Exit(UNSUPPORTED, f"fake aws: unsupported --output {output}\n")


# Parameters the AWS CLI takes as lists (several values after the option).
LIST_PARAMETERS = {"architectures", "attribute-names", "function-response-types"}
ESM_OPERATIONS = {"create-event-source-mapping", "list-event-source-mappings", "get-event-source-mapping",
                  "update-event-source-mapping"}
REGION, ACCOUNT = "us-east-1", "000000000000"


def operation_name(op: str) -> str:
    return "".join(part.title() for part in op.split("-"))


def aws_error(error_exit: int, code: str, op: str, message: str) -> Exit:
    return Exit(error_exit, f"\nAn error occurred ({code}) when calling the {operation_name(op)} operation: {message}\n")


def sqs_attributes(raw: str, op: str, error_exit: int) -> dict:
    """--attributes as the CLI reads JSON: a map of strings (a number is refused)."""
    try:
        attributes = json.loads(raw)
    except json.JSONDecodeError as e:
        raise Exit(252, f"\nError parsing parameter '--attributes': Invalid JSON: {e}\n")
    for key, value in attributes.items():
        if not isinstance(value, str):
            raise Exit(252, f"\nParameter validation failed:\nInvalid type for parameter Attributes.{key}, value: {value}, "
                            f"type: {type(value)}, valid types: <class 'str'>\n")
    return attributes


def sqs_call(st: dict, op: str, params: dict, error_exit: int):
    queues = st["aws"].setdefault("queues", {})
    by_url = {q["QueueUrl"]: name for name, q in queues.items()}
    defaults = {"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600", "DelaySeconds": "0",
                "MaximumMessageSize": "262144", "ReceiveMessageWaitTimeSeconds": "0"}

    def check(attributes: dict) -> None:
        policy = attributes.get("RedrivePolicy")
        if policy is not None:
            try:
                redrive = json.loads(policy)
            except json.JSONDecodeError:
                raise aws_error(error_exit, "InvalidAttributeValue", op, f"Invalid value for the parameter RedrivePolicy. Reason: {policy} is not JSON.")
            target = redrive.get("deadLetterTargetArn", "")
            if not any(q["Attributes"]["QueueArn"] == target for q in queues.values()):
                raise aws_error(error_exit, "InvalidAttributeValue", op,
                                f"Value {policy} for parameter RedrivePolicy is invalid. Reason: Dead-letter target does not exist.")
            if not 1 <= int(redrive.get("maxReceiveCount", 0)) <= 1000:
                raise aws_error(error_exit, "InvalidAttributeValue", op,
                                f"Value {policy} for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: must be 1 to 1000.")

    def queue_of(url: str) -> dict:
        if url not in by_url:
            raise aws_error(error_exit, "AWS.SimpleQueueService.NonExistentQueue", op, "The specified queue does not exist.")
        return queues[by_url[url]]

    if op == "create-queue":
        name = params["queue-name"]
        attributes = sqs_attributes(params.get("attributes", "{}"), op, error_exit)
        if name in queues:
            live = queues[name]["Attributes"]
            different = sorted(k for k, v in attributes.items() if live.get(k, defaults.get(k)) != v)
            if different:
                raise aws_error(error_exit, "QueueAlreadyExists", op,
                                f"A queue already exists with the same name and a different value for attribute(s) {', '.join(different)}")
            return {"QueueUrl": queues[name]["QueueUrl"]}
        check(attributes)
        queues[name] = {
            "QueueUrl": f"http://sqs.{REGION}.localhost.localstack.cloud:4566/{ACCOUNT}/{name}",
            "Attributes": {**defaults, **attributes, "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"},
            "Messages": {"visible": 0, "in_flight": 0},
        }
        return {"QueueUrl": queues[name]["QueueUrl"]}
    if op == "get-queue-url":
        name = params["queue-name"]
        if name not in queues:
            raise aws_error(error_exit, "AWS.SimpleQueueService.NonExistentQueue", op, "The specified queue does not exist.")
        return {"QueueUrl": queues[name]["QueueUrl"]}
    if op == "set-queue-attributes":
        q = queue_of(params["queue-url"])
        attributes = sqs_attributes(params["attributes"], op, error_exit)
        check(attributes)
        q["Attributes"].update(attributes)
        return None
    if op == "get-queue-attributes":
        q = queue_of(params["queue-url"])
        everything = {**q["Attributes"], "ApproximateNumberOfMessages": str(q["Messages"]["visible"]),
                      "ApproximateNumberOfMessagesNotVisible": str(q["Messages"]["in_flight"]),
                      "ApproximateNumberOfMessagesDelayed": "0"}
        names = params.get("attribute-names", [])
        if "All" in names:
            return {"Attributes": everything}
        return {"Attributes": {k: everything[k] for k in names if k in everything}} if names else None
    raise Exit(UNSUPPORTED, f"fake aws: unsupported: sqs {op}\n")


def event_source_mapping_call(st: dict, op: str, params: dict, error_exit: int):
    mappings = st["aws"].setdefault("mappings", {})
    fns, queues = st["aws"]["functions"], st["aws"].get("queues", {})

    def function_arn(name: str) -> str:
        if name not in fns:
            raise aws_error(error_exit, "ResourceNotFoundException", op,
                            f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
        return fns[name]["FunctionArn"]

    def configure(m: dict) -> None:
        if "batch-size" in params:
            m["BatchSize"] = int(params["batch-size"])
        if "maximum-batching-window-in-seconds" in params:
            m["MaximumBatchingWindowInSeconds"] = int(params["maximum-batching-window-in-seconds"])
        if "function-response-types" in params:
            if set(params["function-response-types"]) - {"ReportBatchItemFailures"}:
                raise aws_error(error_exit, "ValidationException", op, "1 validation error detected: Value at 'functionResponseTypes' "
                                                                        "failed to satisfy constraint")
            m["FunctionResponseTypes"] = params["function-response-types"]
        if not 1 <= m["BatchSize"] <= 10000 or (m["BatchSize"] > 10 and m["MaximumBatchingWindowInSeconds"] < 1):
            raise aws_error(error_exit, "InvalidParameterValueException", op,
                            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
        queue = next(q for q in queues.values() if q["Attributes"]["QueueArn"] == m["EventSourceArn"])
        timeout = next(f["Timeout"] for f in fns.values() if f["FunctionArn"] == m["FunctionArn"])
        visibility = int(queue["Attributes"]["VisibilityTimeout"])
        if visibility < timeout:
            raise aws_error(error_exit, "InvalidParameterValueException", op,
                            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds")

    if op == "create-event-source-mapping":
        fn_arn = function_arn(params["function-name"])
        arn = params["event-source-arn"]
        if not any(q["Attributes"]["QueueArn"] == arn for q in queues.values()):
            raise aws_error(error_exit, "InvalidParameterValueException", op, f"Error occurred while ReceiveMessage. SQS Error Code: "
                                                                               f"AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: {arn}")
        existing = next((u for u, m in mappings.items() if m["FunctionArn"] == fn_arn and m["EventSourceArn"] == arn), None)
        if existing:
            raise aws_error(error_exit, "ResourceConflictException", op,
                            f"An event source mapping with SQS arn (\" {arn} \") and function (\" {params['function-name']} \") "
                            f"already exists. Please update or delete the existing mapping with UUID {existing}")
        uuid = hashlib.sha256(f"{fn_arn}|{arn}|{len(mappings)}".encode()).hexdigest()
        uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
        m = {"UUID": uuid, "FunctionArn": fn_arn, "EventSourceArn": arn, "BatchSize": 10,
             "MaximumBatchingWindowInSeconds": 0, "FunctionResponseTypes": [], "State": "Creating"}
        configure(m)
        mappings[uuid] = m
        return m
    if op == "list-event-source-mappings":
        out = list(mappings.values())
        if "function-name" in params:
            fn_arn = function_arn(params["function-name"])
            out = [m for m in out if m["FunctionArn"] == fn_arn]
        if "event-source-arn" in params:
            out = [m for m in out if m["EventSourceArn"] == params["event-source-arn"]]
        return {"EventSourceMappings": out}
    uuid = params.get("uuid")
    if uuid not in mappings:
        raise aws_error(error_exit, "ResourceNotFoundException", op, f"The resource you requested does not exist. (Service: Lambda, "
                                                                      f"Status Code: 404, Request ID: {uuid})")
    m = mappings[uuid]
    if op == "get-event-source-mapping":
        # A new or updated mapping is Enabled by the time anyone asks again.
        if m["State"] in ("Creating", "Updating"):
            m["State"] = "Enabled"
        return m
    if op == "update-event-source-mapping":
        if "function-name" in params:
            m["FunctionArn"] = function_arn(params["function-name"])
        configure(m)
        m["State"] = "Updating"
        return m
    raise Exit(UNSUPPORTED, f"fake aws: unsupported: lambda {op}\n")


def aws_call(st: dict, args: list[str], error_exit: int):
    if args[:2] == ["logs", "tail"]:
        return "2026-01-01T00:00:00 fake fraud-check log line\n"
    if not args or args[0] not in ("lambda", "sqs") or len(args) < 2:
        raise Exit(UNSUPPORTED, f"fake aws: unsupported: {' '.join(args)}\n")
    service = args[0]
    op, params, i = args[1], {}, 2
    if op == "wait":
        op, i = f"wait {args[2]}", 3
    while i < len(args):
        if not args[i].startswith("--"):
            raise Exit(UNSUPPORTED, f"fake aws: unsupported: {' '.join(args)}\n")
        name, i = args[i][2:], i + 1
        values = []
        while i < len(args) and not args[i].startswith("--"):
            values.append(args[i])
            i += 1
        params[name] = values if name in LIST_PARAMETERS else (values[0] if values else True)
    enabled = st["docker"]["containers"]["otel-lab-localstack"].get("env", {}).get("SERVICES", "").split(",")
    if service not in enabled:
        raise Exit(error_exit, f"\nAn error occurred (InternalFailure) when calling the {operation_name(op)} operation: "
                               f"Service '{service}' is not enabled. Please check your 'SERVICES' configuration variable.\n")
    if service == "sqs":
        return sqs_call(st, op, params, error_exit)
    if op in ESM_OPERATIONS:
        return event_source_mapping_call(st, op, params, error_exit)
    fns = st["aws"]["functions"]
    name = params.get("function-name")
    region, account = "us-east-1", "000000000000"

    def not_found(operation: str):
        return Exit(error_exit, f"\nAn error occurred (ResourceNotFoundException) when calling the {operation} operation: "
                                f"Function not found: arn:aws:lambda:{region}:{account}:function:{name}\n")

    def read_zip(ref: str) -> int:
        if not ref.startswith("fileb://"):
            raise Exit(UNSUPPORTED, "fake aws: --zip-file must be fileb://\n")
        path = Path(ref[len("fileb://"):])
        try:
            with zipfile.ZipFile(path) as z:
                if "bootstrap" not in z.namelist():
                    raise Exit(error_exit, "\nAn error occurred (InvalidParameterValueException): the zip has no bootstrap at its root\n")
        except (OSError, zipfile.BadZipFile):
            raise Exit(255, f"\nError parsing parameter '--zip-file': Unable to load paramfile {ref}\n")
        return path.stat().st_size

    if op == "create-function":
        if name in fns:
            raise Exit(error_exit, f"\nAn error occurred (ResourceConflictException) when calling the CreateFunction operation: Function already exist: {name}\n")
        for required in ("runtime", "role", "handler", "zip-file"):
            if required not in params:
                raise Exit(252, f"\naws: error: the following arguments are required: --{required}\n")
        fns[name] = {
            "FunctionName": name, "FunctionArn": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "Runtime": params["runtime"], "Role": params["role"], "Handler": params["handler"],
            "CodeSize": read_zip(params["zip-file"]), "Timeout": int(params.get("timeout", 3)),
            "MemorySize": int(params.get("memory-size", 128)), "Version": "$LATEST", "PackageType": "Zip",
            "Architectures": params.get("architectures", ["x86_64"]),
            "Environment": json.loads(params["environment"]) if "environment" in params else {"Variables": {}},
            "State": "Active", "LastUpdateStatus": "Successful", "CodeRevision": 1,
        }
        return dict(fns[name], State="Pending")
    if op == "get-function":
        if name not in fns:
            raise not_found("GetFunction")
        return {"Configuration": fns[name], "Code": {"RepositoryType": "S3", "Location": f"http://s3.localhost.localstack.cloud:4566/{name}.zip"}}
    if op == "update-function-code":
        if name not in fns:
            raise not_found("UpdateFunctionCode")
        fns[name]["CodeSize"] = read_zip(params["zip-file"])
        fns[name]["CodeRevision"] += 1
        if "architectures" in params:
            fns[name]["Architectures"] = params["architectures"]
        return fns[name]
    if op == "update-function-configuration":
        if name not in fns:
            raise not_found("UpdateFunctionConfiguration")
        if "environment" in params:
            fns[name]["Environment"] = json.loads(params["environment"])
        return fns[name]
    if op in ("wait function-active-v2", "wait function-updated-v2"):
        if name not in fns:
            raise Exit(255, f"\nWaiter {'FunctionActiveV2' if 'active' in op else 'FunctionUpdatedV2'} failed: Waiter encountered a terminal failure state: "
                            "For expression \"Configuration.State\" we matched expected path: \"Failed\"\n")
        return None
    if op == "list-functions":
        # LocalStack, like AWS, leaves the state fields out of list-functions.
        hidden = {"State", "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason", "CodeRevision"}
        return {"Functions": [{k: v for k, v in f.items() if k not in hidden} for f in fns.values()]}
    if op == "get-function-url-config":
        url = st["aws"]["urls"].get(name)
        if url is None:
            raise Exit(error_exit, "\nAn error occurred (ResourceNotFoundException) when calling the GetFunctionUrlConfig operation: "
                                   "The resource you requested does not exist.\n")
        return {"FunctionUrl": url, "FunctionArn": fns.get(name, {}).get("FunctionArn"), "AuthType": "NONE"}
    if op == "create-function-url-config":
        if name not in fns:
            raise not_found("CreateFunctionUrlConfig")
        url_id = hashlib.sha256(name.encode()).hexdigest()[:32]
        url = f"http://{url_id}.lambda-url.{region}.localhost.localstack.cloud:4566/"
        st["aws"]["urls"][name] = url
        return {"FunctionUrl": url, "FunctionArn": fns[name]["FunctionArn"], "AuthType": params.get("auth-type", "NONE")}
    raise Exit(UNSUPPORTED, f"fake aws: unsupported: {' '.join(args)}\n")


# ---------------------------------------------------------------------------- curl, uname, cargo

def curl_main(argv: list[str]) -> str:
    url, fail, i = None, False, 0
    while i < len(argv):
        a = argv[i]
        if a in ("--max-time", "-m", "-o", "--output", "--connect-timeout"):
            i += 2
            continue
        if a.startswith("--"):
            fail = fail or a == "--fail"
        elif a.startswith("-"):
            fail = fail or "f" in a
        else:
            url = a
        i += 1
    m = re.fullmatch(r"https?://([^/:]+)(?::(\d+))?(/.*)?", url or "")
    if not m:
        raise unsupported("curl", argv)
    host, port, path = m.group(1), int(m.group(2) or 80), m.group(3) or "/"
    with locked_state() as st:
        containers = st["docker"]["containers"].values()
        listening = [c for c in containers if c["status"] == "running" and any(
            p["host_port"] == port and p["host_ip"] in ("127.0.0.1", "0.0.0.0") for p in c["ports"])]
    if host not in ("127.0.0.1", "localhost", "localhost.localstack.cloud") or not listening:
        raise Exit(7, f"curl: (7) Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server\n")
    if path == "/_localstack/health":
        # With STRICT_SERVICE_LOADING (LocalStack's default) what SERVICES leaves out is disabled.
        enabled = set(listening[0].get("env", {}).get("SERVICES", "").split(","))
        services = {name: "available" if name in enabled else "disabled"
                    for name in ("lambda", "iam", "sts", "logs", "sqs", "s3", "dynamodb")}
        return json.dumps({"services": services, "edition": "community", "version": "4.14.0"})
    return "ok"


def uname_main(argv: list[str]) -> str:
    with locked_state() as st:
        u = st["uname"]
    parts = {"-s": u["s"], "-m": u["m"]}
    if not argv:
        return u["s"] + "\n"
    if all(a in parts for a in argv):
        return " ".join(parts[a] for a in argv) + "\n"
    raise unsupported("uname", argv)


def cargo_main(argv: list[str]) -> str:
    if argv[:1] == ["--version"]:
        return "cargo 1.95.0 (fake)\n"
    if argv[:1] == ["build"] and "-p" in argv and argv[argv.index("-p") + 1] == "lambda-handler" and "--bin" in argv:
        profile = "release" if "--release" in argv else "debug"
        target = Path(os.environ.get("CARGO_TARGET_DIR") or "target") / profile
        target.mkdir(parents=True, exist_ok=True)
        source = os.environ.get("FAKE_BOOTSTRAP")
        if not source:
            raise Exit(UNSUPPORTED, "fake cargo: FAKE_BOOTSTRAP is not set\n")
        binary = argv[argv.index("--bin") + 1]
        if binary not in ("bootstrap", "fulfilment", "lambda-emulator"):
            raise Exit(101, f"error: no bin target named `{binary}` in `lambda-handler` package\n")
        shutil.copyfile(source, target / binary)
        os.chmod(target / binary, 0o755)
        sys.stderr.write(f"    Finished `{profile}` profile (fake cargo: copied {source})\n")
        return ""
    raise unsupported("cargo", argv)


# ---------------------------------------------------------------------------- entry point

TOOLS = {"docker": docker_main, "kind": kind_main, "kubectl": kubectl_main, "aws": aws_main,
         "curl": curl_main, "uname": uname_main, "cargo": cargo_main}


def main(tool: str) -> None:
    argv = sys.argv[1:]
    log_call(tool, argv)
    try:
        out = TOOLS[tool](argv)
    except Exit as e:
        sys.stdout.write(e.stdout)
        sys.stderr.write(e.stderr)
        sys.exit(e.code)
    sys.stdout.write(out)
