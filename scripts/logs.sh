#!/usr/bin/env bash
# `make logs SERVICE=name`: the recent logs of one part of the lab, and then follows them.
#   in the cluster: otel-agent, otel-gateway, order-service, jaeger, prometheus, grafana
#   outside:        payment-service, payment-sidecar, inventory-service, localstack,
#                   fraud-check, fulfilment (the Lambdas' log groups in LocalStack)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

service="${1:-}"
case "$service" in
    otel-agent) kc logs --tail=100 --follow --prefix daemonset/otel-agent ;;
    otel-gateway | order-service | jaeger | prometheus | grafana)
        # Every replica, each line prefixed with its pod.
        kc logs --tail=100 --follow --prefix --max-log-requests=5 \
            --selector "app.kubernetes.io/name=$service"
        ;;
    payment-service) docker logs --tail 100 --follow "$PAYMENT_CONTAINER" ;;
    payment-sidecar) docker logs --tail 100 --follow "$PAYMENT_SIDECAR" ;;
    inventory-service) docker logs --tail 100 --follow "$INVENTORY_CONTAINER" ;;
    localstack) docker logs --tail 100 --follow "$LOCALSTACK_CONTAINER" ;;
    fraud-check | fulfilment)
        # `logs tail` is AWS CLI v2 only; v1 would answer with its whole usage text.
        aws_cli_v2 || die "make logs SERVICE=$service needs the AWS CLI v2 (aws --version says: $(aws --version 2>&1 | head -n1)); pip install awscli gives v1: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
        awslocal logs tail "/aws/lambda/$service" --follow
        ;;
    *)
        die "SERVICE must be one of: otel-agent otel-gateway order-service jaeger prometheus grafana payment-service payment-sidecar inventory-service localstack fraud-check fulfilment (e.g. make logs SERVICE=otel-gateway)"
        ;;
esac
