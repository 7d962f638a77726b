#!/usr/bin/env bash
# `make teardown`: removes the Kind cluster, the containers beside it and the Lambda
# containers LocalStack started. Idempotent: what is already gone is skipped. The images
# stay (docker image rm otel-lab/... removes them).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v docker >/dev/null 2>&1 || die "docker is not installed: nothing of the lab can be running"

for c in "${OUTSIDE_CONTAINERS[@]}"; do
    if container_exists "$c"; then
        say "removing container $c"
        docker rm --force "$c" >/dev/null
    fi
done
# Lambda execution environments LocalStack left behind (it names them after itself).
# (No mapfile: macOS ships bash 3.2.)
lambdas="$(docker ps --all --quiet --filter "name=${LOCALSTACK_CONTAINER}-lambda")"
if [[ -n "$lambdas" ]]; then
    say "removing the Lambda containers"
    # shellcheck disable=SC2086 # one container id per word
    docker rm --force $lambdas >/dev/null
fi

if command -v kind >/dev/null 2>&1 && cluster_exists; then
    say "deleting the Kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER"
fi
echo "the lab is down" >&2
