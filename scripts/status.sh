#!/usr/bin/env bash
# `make status`: what runs in the cluster and beside it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

if ! cluster_exists; then
    echo "no Kind cluster $CLUSTER: run make setup" >&2
else
    echo "== Kubernetes (context $CONTEXT, namespace $NAMESPACE)"
    kc get pods,services,hpa,pdb -o wide
fi
echo
echo "== Containers on the $NETWORK network (outside the cluster)"
docker ps --all --filter "name=otel-lab-" \
    --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
if curl -fsS http://127.0.0.1:4566/_localstack/health >/dev/null 2>&1; then
    echo
    echo "== LocalStack Lambda functions"
    # From get-function: list-functions leaves State and LastUpdateStatus out, in LocalStack
    # as in AWS, and the CLI prints a missing field as "None".
    functions="$(awslocal lambda list-functions --query 'Functions[].FunctionName' --output text || true)"
    printf 'NAME\tRUNTIME\tARCHITECTURE\tSTATE\tLAST UPDATE\n'
    for f in $functions; do
        awslocal lambda get-function --function-name "$f" --output text \
            --query 'Configuration.[FunctionName,Runtime,Architectures[0],State,LastUpdateStatus]' || true
    done
    echo
    echo "== LocalStack SQS (order.placed → fulfilment)"
    printf 'QUEUE\tVISIBLE\tIN FLIGHT\n'
    for queue in "$QUEUE_NAME" "$DLQ_NAME"; do
        if url="$(awslocal sqs get-queue-url --queue-name "$queue" --query QueueUrl --output text 2>/dev/null)"; then
            printf '%s\t' "$queue"
            awslocal sqs get-queue-attributes --queue-url "$url" \
                --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible \
                --query 'Attributes.[ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible]' \
                --output text || echo
        else
            printf '%s\t(not created: make setup)\n' "$queue"
        fi
    done
    echo
    printf 'EVENT SOURCE MAPPING\tSTATE\tBATCH SIZE\tWINDOW (S)\n'
    awslocal lambda list-event-source-mappings --function-name fulfilment \
        --query 'EventSourceMappings[].[UUID,State,BatchSize,MaximumBatchingWindowInSeconds]' \
        --output text 2>/dev/null || echo "(none: make setup)"
fi
