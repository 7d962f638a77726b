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
# The workspace version. `make images` tags each build otel-lab/<bin>:<version> and also
# otel-lab/<bin>:<version>-<image id> (image_tag below), the tag the lab runs: it changes
# exactly when the image's content does, so re-running `make setup` after a code change
# rolls the workloads, and re-running it without one rolls nothing.
VERSION="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)}"
IMAGES=(collector order-service payment-service inventory-service)
# Images that `kind load` puts on the node (the rest run as plain Docker containers).
CLUSTER_IMAGES=(collector order-service)

# The community image: it runs without an account or token (and ignores one). Override to
# run LocalStack Pro (localstack/localstack-pro:...), which needs LOCALSTACK_AUTH_TOKEN.
LOCALSTACK_IMAGE="${LOCALSTACK_IMAGE:-localstack/localstack:4.14.0}"
LOCALSTACK_CONTAINER="otel-lab-localstack"
PAYMENT_CONTAINER="otel-lab-payment-service"
PAYMENT_SIDECAR="otel-lab-payment-sidecar"
INVENTORY_CONTAINER="otel-lab-inventory-service"
# inventory-service's API on the host (`make traffic --inventory`'s default port).
INVENTORY_HOST_PORT=8082
OUTSIDE_CONTAINERS=("$PAYMENT_CONTAINER" "$PAYMENT_SIDECAR" "$INVENTORY_CONTAINER" "$LOCALSTACK_CONTAINER")

# The queue of order.placed events and its dead-letter queue (SQS in LocalStack,
# localstack/deploy-queue.sh).
QUEUE_NAME="orders"
DLQ_NAME="orders-dlq"

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

# The manifests as `kubectl apply -k k8s` would apply them (the Prometheus and Grafana files
# are copies in k8s/generated/, see scripts/sync-kind-configs.sh).
render() { kubectl kustomize "$REPO/k8s"; }

# The manifests with the lab's images at the tags `make images` just built (image_tag), in
# place of the workspace version k8s/kustomization.yaml names.
render_built() {
    local bin tag version_re
    local -a edits=()
    # (sed, not ${VERSION//./...}: bash 3.2 and 5.2 treat backslashes there differently)
    version_re="$(printf '%s' "$VERSION" | sed 's/[.]/\\./g')"
    for bin in "${CLUSTER_IMAGES[@]}"; do
        tag="$(image_tag "$bin")" || return 1
        edits+=(-e "s#^\( *\)image: otel-lab/$bin:$version_re\$#\1image: otel-lab/$bin:$tag#")
    done
    render | sed "${edits[@]}"
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }
container_exists() { docker container inspect "$1" >/dev/null 2>&1; }

# Stops the script, with the container's last log lines, unless the container runs. A
# container that crashed at start-up has no address, and an EndpointSlice with an empty one
# is refused with a message about `addresses` that names no container.
require_running() {
    local name="$1" status code
    status="$(docker container inspect --format '{{.State.Status}}' "$name" 2>/dev/null)" ||
        die "there is no container $name (make setup starts it)"
    if [[ "$status" != running ]]; then
        code="$(docker container inspect --format '{{.State.ExitCode}}' "$name" 2>/dev/null || true)"
        printf 'error: container %s is %s (exit code %s); its last log lines:\n' "$name" "$status" "${code:-?}" >&2
        docker logs --tail 30 "$name" >&2 || true
        die "container $name is not running: fix what its log says, then run make setup again"
    fi
}

# The IPv4 address of a running container on the kind network. Call it in an assignment
# (ip="$(container_ip ...)"), where its failure stops the script.
container_ip() {
    local ip
    require_running "$1"
    ip="$(docker container inspect --format "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$1")"
    [[ -n "$ip" ]] || die "container $1 has no address on the $NETWORK network"
    echo "$ip"
}

# Docker's CPU architecture in Lambda's words (x86_64 or arm64).
lambda_arch() {
    case "$(docker info --format '{{.Architecture}}' 2>/dev/null)" in
        aarch64 | arm64) echo arm64 ;;
        *) echo x86_64 ;;
    esac
}

# Docker's platform in OCI's words (linux/amd64 or linux/arm64).
docker_platform() {
    case "$(lambda_arch)" in
        arm64) echo linux/arm64 ;;
        *) echo linux/amd64 ;;
    esac
}

# The tag the lab runs of otel-lab/<bin>: <version>-<first 12 hex digits of the image id>.
# The id is a digest of the image's content (with the attestations switched off in
# scripts/images.sh, nothing else), so the tag changes exactly when the build does.
image_tag() {
    local id
    id="$(docker image inspect --format '{{.Id}}' "otel-lab/$1:$VERSION" 2>/dev/null)" ||
        die "there is no image otel-lab/$1:$VERSION: run make images"
    id="${id#sha256:}"
    echo "$VERSION-${id:0:12}"
}

# Whether the Docker daemon speaks API version 1.$1 or later.
docker_api_at_least() {
    local api minor
    api="$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || echo 1.0)"
    minor="${api#1.}"
    minor="${minor%%.*}"
    [[ "$api" == 1.* && "$minor" =~ ^[0-9]+$ ]] && ((minor >= $1))
}

# Puts one image on the Kind node. Not `kind load docker-image`: with the containerd image
# store (the default of Docker Engine 29 and Docker Desktop), `docker save` of an image that
# carries attestations writes an index naming manifests it leaves out, and the node's
# `ctr import` fails with "content digest sha256:...: not found" (kind issue #3795).
# scripts/images.sh builds without attestations; saving only the node's platform
# (--platform, Docker API 1.48+) keeps this working for images built some other way.
# Several references of one image share the archive (make setup loads the build's tag and
# the version tag, which `kubectl apply -k k8s` names).
load_image() {
    local archive
    archive="$(mktemp "${TMPDIR:-/tmp}/otel-lab-image.XXXXXX")"
    if docker_api_at_least 48; then
        docker save --platform "$(docker_platform)" --output "$archive" "$@" || {
            rm -f "$archive"
            die "docker save $* failed"
        }
    else
        docker save --output "$archive" "$@" || {
            rm -f "$archive"
            die "docker save $* failed"
        }
    fi
    kind load image-archive --name "$CLUSTER" "$archive" || {
        rm -f "$archive"
        die "kind could not load $* into the node (docs/kind.md, Troubleshooting: image loading)"
    }
    rm -f "$archive"
}

# The socket of the Docker daemon, as a path on the daemon's side, for LocalStack to start
# the Lambda containers through. Docker Engine, Docker Desktop and colima have
# /var/run/docker.sock there (Desktop and colima inside their VM, whatever DOCKER_HOST says
# on the host); rootless Docker has none and listens on $XDG_RUNTIME_DIR/docker.sock, which
# DOCKER_HOST or the current docker context names. LOCALSTACK_DOCKER_SOCKET overrides.
docker_socket() {
    local host
    if [[ -n "${LOCALSTACK_DOCKER_SOCKET:-}" ]]; then
        echo "$LOCALSTACK_DOCKER_SOCKET"
        return
    fi
    case "$(docker info --format '{{.SecurityOptions}}' 2>/dev/null)" in
        *rootless*)
            host="${DOCKER_HOST:-$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)}"
            case "$host" in
                unix://*) echo "${host#unix://}" ;;
                *) die "rootless Docker at '$host': LocalStack needs the daemon's unix socket; set LOCALSTACK_DOCKER_SOCKET to its path" ;;
            esac
            ;;
        *) echo /var/run/docker.sock ;;
    esac
}

# Whether `aws` is the AWS CLI v2 (v1, what `pip install awscli` gives, has no `logs tail`).
aws_cli_v2() { aws --version 2>&1 | grep -q '^aws-cli/2\.'; }
