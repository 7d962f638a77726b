#!/usr/bin/env bash
# Checks what `make setup` needs, with one line per missing tool saying how to get it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

missing=0
need() {
    local tool="$1" hint="$2"
    if ! command -v "$tool" >/dev/null 2>&1; then
        printf 'missing: %-9s %s\n' "$tool" "$hint" >&2
        missing=1
    fi
}
need docker "Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/"
need kind "kind v0.29 or newer: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "kubectl 1.31 or newer: https://kubernetes.io/docs/tasks/tools/"
need awslocal "the AWS CLI with LocalStack's wrapper: pip install awscli awscli-local"
need curl "curl, from your package manager"
if [[ "$(uname -s)" == Linux ]]; then
    # On Linux the Lambda package is built with the host's cargo (fast, cached); elsewhere
    # in Docker (see localstack/deploy-lambda.sh).
    need cargo "Rust: https://rustup.rs"
fi
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
    printf 'missing: the Docker daemon is not running (or this user may not use it): start Docker\n' >&2
    missing=1
fi
if command -v docker >/dev/null 2>&1 && ! docker buildx version >/dev/null 2>&1; then
    printf 'missing: docker buildx (BuildKit), needed by the Dockerfile: https://docs.docker.com/build/buildx/install/\n' >&2
    missing=1
fi
if ((missing)); then
    die "install what is missing above, then run make setup again"
fi
echo "prerequisites: docker, kind, kubectl, awslocal, curl found" >&2
