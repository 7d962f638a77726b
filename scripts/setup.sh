#!/usr/bin/env bash
# `make setup`: the whole lab on Kind + LocalStack, from nothing to URLs. Safe to run again
# (each step keeps what is already there and updates what changed).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

"$REPO/scripts/prerequisites.sh"
"$REPO/scripts/images.sh"

if cluster_exists; then
    say "Kind cluster $CLUSTER exists"
else
    say "creating the Kind cluster $CLUSTER"
    kind create cluster --config "$REPO/k8s/kind-config.yaml" --wait 120s
fi

say "loading the lab's images into the node"
for bin in "${CLUSTER_IMAGES[@]}"; do
    kind load docker-image --name "$CLUSTER" "otel-lab/$bin:$VERSION"
done

say "applying k8s/ (namespace $NAMESPACE)"
render | kubectl --context "$CONTEXT" apply -f -

"$REPO/scripts/outside.sh"

say "waiting for the rollouts"
kc rollout status daemonset/otel-agent --timeout=180s
for d in otel-gateway jaeger prometheus grafana order-service; do
    kc rollout status "deployment/$d" --timeout=300s
done

"$REPO/scripts/urls.sh"
