#!/usr/bin/env bash
# Checks what `make setup` needs, with one line per missing or too old tool saying how to get
# it. The minimum versions are the ones docs/kind.md names (`make kind-lint` compares them).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# The kind release whose node image k8s/kind-config.yaml pins.
KIND_MIN=0.29
# One minor version below the cluster's Kubernetes 1.31, the oldest kubectl the Kubernetes
# version-skew policy supports against it.
KUBECTL_MIN=1.30

missing=0
lack() {
    printf 'missing: %s\n' "$*" >&2
    missing=1
}
have() { command -v "$1" >/dev/null 2>&1; }
need() {
    local tool="$1" hint="$2"
    have "$tool" || lack "$(printf '%-9s %s' "$tool" "$hint")"
}
# Whether version $1 (X.Y[.Z...]) is at least $2 (X.Y).
at_least() {
    local have_major have_minor want_major want_minor
    have_major="${1%%.*}"
    have_minor="${1#*.}"
    have_minor="${have_minor%%.*}"
    want_major="${2%%.*}"
    want_minor="${2#*.}"
    [[ "$have_major" =~ ^[0-9]+$ && "$have_minor" =~ ^[0-9]+$ ]] || return 1
    ((have_major > want_major || (have_major == want_major && have_minor >= want_minor)))
}

need docker "Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/"
need kind "kind v$KIND_MIN or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "kubectl $KUBECTL_MIN or newer: https://kubernetes.io/docs/tasks/tools/"
need aws "the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
need awslocal "LocalStack's wrapper of the AWS CLI: pip install awscli-local (not awscli-local[ver1])"
need curl "curl, from your package manager"
# On every OS: `make traffic` builds the load generator on this machine, and on Linux
# `make setup` builds the Lambda package with it (macOS builds that in Docker).
need cargo "Rust: https://rustup.rs"

if have kind; then
    kind_version="$(kind version 2>/dev/null | sed -n 's/^kind v\([0-9][0-9.]*\).*/\1/p')"
    at_least "${kind_version:-0.0}" "$KIND_MIN" ||
        lack "kind v$KIND_MIN or newer (found ${kind_version:-an unknown version}): https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
fi
if have kubectl; then
    # The minor version may carry a suffix ("31+" on some distributions).
    kubectl_version="$(kubectl version --client -o json 2>/dev/null |
        sed -n -e 's/.*"major": *"\([0-9]*\).*/\1/p' -e 's/.*"minor": *"\([0-9]*\).*/\1/p' |
        head -n2 | paste -sd. -)"
    at_least "${kubectl_version:-0.0}" "$KUBECTL_MIN" ||
        lack "kubectl $KUBECTL_MIN or newer (found ${kubectl_version:-an unknown version}): https://kubernetes.io/docs/tasks/tools/"
fi
if have aws && ! aws_cli_v2; then
    lack "the AWS CLI v2 (found $(aws --version 2>&1 | head -n1)); \`pip install awscli\` is v1, which has no \`aws logs tail\` (make logs SERVICE=fraud-check): https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
fi
if have docker && ! docker info >/dev/null 2>&1; then
    lack "the Docker daemon is not running (or this user may not use it): start Docker"
fi
if have docker && ! docker buildx version >/dev/null 2>&1; then
    lack "docker buildx (BuildKit), needed by the Dockerfile: https://docs.docker.com/build/buildx/install/"
fi
if ((missing)); then
    die "install what is missing above, then run make setup again"
fi
echo "prerequisites: docker, kind, kubectl, aws v2, awslocal, curl, cargo found" >&2
