#!/usr/bin/env bash
# Deploys one of the lab's functions to LocalStack. Idempotent: an existing function gets
# the new code and configuration.
#
#   localstack/deploy-lambda.sh fraud-check            prints its function URL (last line)
#   localstack/deploy-lambda.sh fulfilment NAME=VALUE...   prints its ARN (last line); the
#                                                        NAME=VALUEs join its environment
#
#   1. the zip: crates/lambda-handler/package.sh on a Linux host (the host's cargo);
#      elsewhere (macOS) the Dockerfile's lambda-zip stage builds both in a Linux container;
#   2. the function (provided.al2023, the Docker host's architecture), its environment
#      pointing OTLP/HTTP at the gateway's NodePort on the Kind node, and a wait until it
#      is Active;
#   3. fraud-check only: its function URL (auth NONE). fulfilment is invoked by the event
#      source mapping of the queue `orders` (localstack/deploy-queue.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/../scripts
# shellcheck source=../scripts/lib.sh
source "$(dirname "$0")/../scripts/lib.sh"

FUNCTION="${1:-}"
shift || true
case "$FUNCTION" in
    fraud-check) zip_name=bootstrap.zip ;;
    fulfilment) zip_name=fulfilment.zip ;;
    *) die "usage: localstack/deploy-lambda.sh fraud-check|fulfilment [NAME=VALUE...]" ;;
esac
zip_dir="${CARGO_TARGET_DIR:-$REPO/target}/lambda"
zip="$zip_dir/$zip_name"
arch="$(lambda_arch)"

case "$(uname -m)" in
    aarch64 | arm64) host_arch=arm64 ;;
    *) host_arch=x86_64 ;;
esac
if [[ "$(uname -s)" == Linux && "$host_arch" == "$arch" ]]; then
    say "building $zip_name with crates/lambda-handler/package.sh"
    FUNCTION="$FUNCTION" "$REPO/crates/lambda-handler/package.sh" "$zip" >/dev/null
else
    say "building $zip_name in Docker (the host cannot build a Linux $arch binary)"
    docker build --provenance=false --sbom=false --target lambda-zip \
        --output "type=local,dest=$zip_dir" "$REPO"
fi
[[ -s "$zip" ]] || die "no $zip was produced"

# The gateway as the Lambda containers see it: the Kind node's address on the kind network.
node_ip="$(container_ip "$NODE")"
[[ -n "$node_ip" ]] || die "the Kind node $NODE has no address on the $NETWORK network; is the cluster up?"
variables="\"OTEL_SERVICE_NAME\": \"$FUNCTION\",
  \"OTEL_EXPORTER_OTLP_ENDPOINT\": \"http://$node_ip:$GATEWAY_HTTP_NODEPORT\",
  \"OTEL_EXPORTER_OTLP_PROTOCOL\": \"http/protobuf\",
  \"OTEL_RESOURCE_ATTRIBUTES\": \"cloud.provider=aws,cloud.region=us-east-1,deployment.environment.name=lab\",
  \"RUST_LOG\": \"info\""
for pair in "$@"; do
    [[ "$pair" == *=* ]] || die "not NAME=VALUE: $pair"
    variables="$variables,
  \"${pair%%=*}\": \"${pair#*=}\""
done
environment="{\"Variables\": {
  $variables
}}"

if awslocal lambda get-function --function-name "$FUNCTION" >/dev/null 2>&1; then
    say "updating the $FUNCTION function"
    awslocal lambda update-function-code --function-name "$FUNCTION" \
        --zip-file "fileb://$zip" --architectures "$arch" >/dev/null
    awslocal lambda wait function-updated-v2 --function-name "$FUNCTION"
    awslocal lambda update-function-configuration --function-name "$FUNCTION" \
        --environment "$environment" >/dev/null
else
    say "creating the $FUNCTION function ($arch, provided.al2023)"
    awslocal lambda create-function --function-name "$FUNCTION" \
        --runtime provided.al2023 --handler bootstrap --architectures "$arch" \
        --memory-size 128 --timeout 10 \
        --role arn:aws:iam::000000000000:role/lambda-role \
        --zip-file "fileb://$zip" \
        --environment "$environment" >/dev/null
fi
say "waiting until $FUNCTION is Active"
awslocal lambda wait function-active-v2 --function-name "$FUNCTION"
awslocal lambda wait function-updated-v2 --function-name "$FUNCTION"

if [[ "$FUNCTION" != fraud-check ]]; then
    awslocal lambda get-function --function-name "$FUNCTION" \
        --query Configuration.FunctionArn --output text
    exit 0
fi
url="$(awslocal lambda get-function-url-config --function-name "$FUNCTION" \
    --query FunctionUrl --output text 2>/dev/null || true)"
if [[ -z "$url" || "$url" == None ]]; then
    url="$(awslocal lambda create-function-url-config --function-name "$FUNCTION" \
        --auth-type NONE --query FunctionUrl --output text)"
fi
echo "$url"
