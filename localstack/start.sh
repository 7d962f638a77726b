#!/usr/bin/env bash
# Starts LocalStack (community edition, pinned 4.x) on the `kind` Docker network, so the
# Lambda containers it starts (LAMBDA_DOCKER_NETWORK) reach the gateway's NodePort on the
# Kind node. Its gateway is published on 127.0.0.1:4566 for awslocal. Idempotent.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../scripts
# shellcheck source=../scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

# The services LocalStack serves (it refuses the others). A container started by an older
# lab with other services is replaced: the functions and queues are deployed again after.
SERVICES="lambda,iam,sts,logs,sqs"
if container_exists "$LOCALSTACK_CONTAINER" &&
    [[ "$(docker container inspect --format '{{index .Config.Labels "otel-lab.services"}}' "$LOCALSTACK_CONTAINER")" != "$SERVICES" ]]; then
    say "replacing LocalStack: it was started without some of $SERVICES"
    docker rm --force "$LOCALSTACK_CONTAINER" >/dev/null
fi
if container_exists "$LOCALSTACK_CONTAINER"; then
    docker start "$LOCALSTACK_CONTAINER" >/dev/null
else
    say "starting LocalStack ($LOCALSTACK_IMAGE)"
    socket="$(docker_socket)"
    args=(
        --detach
        --name "$LOCALSTACK_CONTAINER"
        --network "$NETWORK"
        --publish 127.0.0.1:4566:4566
        --memory 1g
        --env "SERVICES=$SERVICES"
        --label "otel-lab.services=$SERVICES"
        --env LAMBDA_DOCKER_NETWORK="$NETWORK"
        # Lambda containers are named after it (teardown finds them by this prefix).
        --env MAIN_CONTAINER_NAME="$LOCALSTACK_CONTAINER"
        --env LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT=60
        --env DEBUG=0
        # LocalStack starts each Lambda execution environment as a sibling container, through
        # the daemon's socket (under rootless Docker not /var/run/docker.sock: docker_socket).
        --volume "$socket:/var/run/docker.sock"
    )
    # The pinned community image runs without a token and ignores one; only LocalStack Pro
    # (LOCALSTACK_IMAGE=localstack/localstack-pro:...) needs it, and only then is it passed.
    if [[ -n "${LOCALSTACK_AUTH_TOKEN:-}" ]]; then
        case "$LOCALSTACK_IMAGE" in
            localstack/localstack:*)
                warn "LOCALSTACK_AUTH_TOKEN is set, but $LOCALSTACK_IMAGE (the community image) does not use it: not passing it"
                ;;
            *) args+=(--env LOCALSTACK_AUTH_TOKEN) ;;
        esac
    fi
    docker run "${args[@]}" "$LOCALSTACK_IMAGE" >/dev/null
fi

say "waiting for LocalStack's Lambda and SQS services"
ready() { grep -q "\"$1\": *\"\\(available\\|running\\)\"" <<<"$2"; }
for _ in $(seq 1 90); do
    health="$(curl -fsS http://127.0.0.1:4566/_localstack/health 2>/dev/null || true)"
    if ready lambda "$health" && ready sqs "$health"; then
        exit 0
    fi
    sleep 2
done
docker logs --tail 50 "$LOCALSTACK_CONTAINER" >&2 || true
die "LocalStack did not become ready in 3 minutes (its last log lines are above)"
