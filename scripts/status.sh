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
fi
