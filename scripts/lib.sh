# Shared settings and helpers of the Kind + LocalStack lab scripts (sourced, not run).
# shellcheck shell=bash
# The settings are used by the scripts that source this file.
# shellcheck disable=SC2034

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO
CLUSTER="${CLUSTER:-otel-lab}"
# Every kubectl call names the lab's context: nothing here touches another cluster.
CONTEXT="kind-${CLUSTER}"
NAMESPACE="otel-lab"
NETWORK="kind"
NODE="${CLUSTER}-control-plane"
# The workspace version: the tag of every lab image (never `latest`).
VERSION="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)}"
IMAGES=(collector order-service payment-service inventory-service)
# Images that `kind load` puts on the node (the rest run as plain Docker containers).
CLUSTER_IMAGES=(collector order-service)

LOCALSTACK_IMAGE="localstack/localstack:4.14.0"
LOCALSTACK_CONTAINER="otel-lab-localstack"
PAYMENT_CONTAINER="otel-lab-payment-service"
PAYMENT_SIDECAR="otel-lab-payment-sidecar"
INVENTORY_CONTAINER="otel-lab-inventory-service"
OUTSIDE_CONTAINERS=("$PAYMENT_CONTAINER" "$PAYMENT_SIDECAR" "$INVENTORY_CONTAINER" "$LOCALSTACK_CONTAINER")

# LocalStack accepts any credentials; the region is part of the function URL's host name.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

# The fixed ClusterIP of the Service `localstack` (k8s/workloads/outside.yaml).
LOCALSTACK_CLUSTER_IP="10.96.0.66"
# The gateway's NodePorts (k8s/collector/gateway-deployment.yaml).
GATEWAY_GRPC_NODEPORT=30317
GATEWAY_HTTP_NODEPORT=30318

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

kc() { kubectl --context "$CONTEXT" --namespace "$NAMESPACE" "$@"; }

# The manifests, with the Prometheus and Grafana files read from prometheus/ and grafana/
# (see k8s/kustomization.yaml).
render() { kubectl kustomize --load-restrictor LoadRestrictionsNone "$REPO/k8s"; }

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }
container_exists() { docker container inspect "$1" >/dev/null 2>&1; }

# The IPv4 address of a container on the kind network.
container_ip() {
    docker container inspect --format "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$1"
}

# Docker's CPU architecture in Lambda's words (x86_64 or arm64).
lambda_arch() {
    case "$(docker info --format '{{.Architecture}}' 2>/dev/null)" in
        aarch64 | arm64) echo arm64 ;;
        *) echo x86_64 ;;
    esac
}
