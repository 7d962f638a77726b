#!/usr/bin/env bash
# `make setup`: the whole lab on Kind + LocalStack, from nothing to URLs. Safe to run again:
# the cluster and LocalStack are kept, images are rebuilt (cached) and only those whose
# content changed get a new tag, so only their workloads roll; the manifests are
# re-applied, the Lambda's code updated and the outside containers recreated.
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
    # --name: the config's `name` is only the default, and every other step uses $CLUSTER.
    kind create cluster --name "$CLUSTER" --config "$REPO/k8s/kind-config.yaml" --wait 120s
fi

say "loading the lab's images into the node"
for bin in "${CLUSTER_IMAGES[@]}"; do
    tag="$(image_tag "$bin")"
    load_image "otel-lab/$bin:$tag" "otel-lab/$bin:$VERSION"
done

# The Prometheus and Grafana files the manifests carry are copies (k8s/generated/): bring
# them up to date with prometheus/ and grafana/ first.
"$REPO/scripts/sync-kind-configs.sh"

say "applying k8s/ (namespace $NAMESPACE)"
# Rendered whole before anything is applied: a failure leaves the cluster as it was.
manifests="$(render_built)"
kubectl --context "$CONTEXT" apply -f - <<<"$manifests"

"$REPO/scripts/outside.sh"

say "waiting for the rollouts"
kc rollout status daemonset/otel-agent --timeout=180s
for d in otel-gateway jaeger prometheus grafana order-service; do
    kc rollout status "deployment/$d" --timeout=300s
done

"$REPO/scripts/urls.sh"
