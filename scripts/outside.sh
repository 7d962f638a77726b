#!/usr/bin/env bash
# Starts what runs outside the cluster, as containers on the `kind` Docker network, and
# tells the cluster where they are:
#
#   LocalStack + the fraud-check Lambda   (localstack/start.sh, localstack/deploy-lambda.sh)
#   payment-service, the "ECS Fargate task": the service container and a sidecar collector
#     sharing one network namespace (--network container:), ECS resource attributes
#   inventory-service, the "EC2 instance": OTLP straight to the gateway's NodePort, EC2
#     resource attributes, its API published on 127.0.0.1:8082 as an instance's public
#     address would be (`make traffic` browses the catalogue there)
#
# then writes the EndpointSlices of the Services inventory-service, payment-service and
# localstack (k8s/workloads/outside.yaml), deploys the fulfilment Lambda (calling those two
# containers) with the SQS queue `orders` and its event source mapping
# (localstack/deploy-queue.sh), and points order-service at the function URL and the queue.
# Idempotent: containers are recreated, so a new image or config takes effect. Each runs the
# image tag `make images` just built (image_tag in lib.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

gateway_grpc="http://$NODE:$GATEWAY_GRPC_NODEPORT"
# Like a real task or instance: no root, no capabilities, read-only root filesystem.
hardening=(--read-only --cap-drop ALL --security-opt no-new-privileges --user 65532:65532)

payment_image="otel-lab/payment-service:$(image_tag payment-service)"
inventory_image="otel-lab/inventory-service:$(image_tag inventory-service)"
collector_image="otel-lab/collector:$(image_tag collector)"

"$REPO/localstack/start.sh"
fraud_check_url="$("$REPO/localstack/deploy-lambda.sh" fraud-check | tail -n1)"
[[ "$fraud_check_url" == http* ]] || die "no function URL from localstack/deploy-lambda.sh"

say "starting the payment \"ECS task\" (payment-service + sidecar collector)"
docker rm --force "$PAYMENT_CONTAINER" "$PAYMENT_SIDECAR" >/dev/null 2>&1 || true
task_id="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# The sidecar owns the task's network namespace, as the pause container of an awsvpc task.
docker run --detach --name "$PAYMENT_SIDECAR" --network "$NETWORK" \
    "${hardening[@]}" --memory 128m --cpus 0.5 \
    --volume "$REPO/k8s/collector/ecs-sidecar.yaml:/etc/otel/sidecar.yaml:ro" \
    --env "GATEWAY_OTLP_ENDPOINT=$NODE:$GATEWAY_GRPC_NODEPORT" \
    --env RUST_LOG=info \
    "$collector_image" --config /etc/otel/sidecar.yaml >/dev/null
docker run --detach --name "$PAYMENT_CONTAINER" --network "container:$PAYMENT_SIDECAR" \
    "${hardening[@]}" --memory 128m --cpus 0.5 \
    --tmpfs /data:rw,size=64m,mode=1777 \
    --env OTEL_SERVICE_NAME=payment-service \
    --env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 \
    --env OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    --env "OTEL_RESOURCE_ATTRIBUTES=cloud.provider=aws,cloud.platform=aws_ecs,cloud.region=us-east-1,cloud.availability_zone=us-east-1a,aws.ecs.launchtype=fargate,aws.ecs.cluster.arn=arn:aws:ecs:us-east-1:000000000000:cluster/otel-lab,aws.ecs.task.arn=arn:aws:ecs:us-east-1:000000000000:task/otel-lab/$task_id,aws.ecs.task.id=$task_id,aws.ecs.task.family=payment,aws.ecs.task.revision=1,container.name=payment-service,deployment.environment.name=lab" \
    --env LISTEN_ADDR=0.0.0.0:8081 \
    --env DATABASE_URL=/data/payments.db \
    --env RUST_LOG=info \
    "$payment_image" >/dev/null

say "starting the inventory \"EC2 instance\""
docker rm --force "$INVENTORY_CONTAINER" >/dev/null 2>&1 || true
docker run --detach --name "$INVENTORY_CONTAINER" --network "$NETWORK" \
    --publish "127.0.0.1:$INVENTORY_HOST_PORT:8082" \
    "${hardening[@]}" --memory 128m --cpus 0.5 \
    --tmpfs /data:rw,size=64m,mode=1777 \
    --env OTEL_SERVICE_NAME=inventory-service \
    --env "OTEL_EXPORTER_OTLP_ENDPOINT=$gateway_grpc" \
    --env OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    --env "OTEL_RESOURCE_ATTRIBUTES=cloud.provider=aws,cloud.platform=aws_ec2,cloud.region=us-east-1,cloud.availability_zone=us-east-1a,host.id=i-0lab5e7c1d2f3a9b4,host.type=t3.small,host.name=ip-10-0-1-17.ec2.internal,deployment.environment.name=lab" \
    --env LISTEN_ADDR=0.0.0.0:8082 \
    --env DATABASE_URL=/data/inventory.db \
    --env RUST_LOG=info \
    "$inventory_image" >/dev/null

# A service that fails at start-up exits within a second or two: wait until the published
# API answers (or the container stops) rather than find out from an EndpointSlice.
for _ in $(seq 1 30); do
    curl -fsS "http://127.0.0.1:$INVENTORY_HOST_PORT/healthz" >/dev/null 2>&1 && break
    [[ "$(docker container inspect --format '{{.State.Status}}' "$INVENTORY_CONTAINER" 2>/dev/null)" == running ]] || break
    sleep 1
done

# The Services of k8s/workloads/outside.yaml have no selector: their endpoints are these
# containers' addresses on the kind network, reachable from pods through the node.
endpoint_slice() {
    local service="$1" ip="$2" ports="$3"
    cat <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $service-outside
  namespace: $NAMESPACE
  labels:
    kubernetes.io/service-name: $service
    endpointslice.kubernetes.io/managed-by: otel-lab-scripts
addressType: IPv4
ports:
$ports
endpoints:
  - addresses: ["$ip"]
    conditions:
      ready: true
---
YAML
}
say "pointing the cluster's Services at the containers"
# Addresses first, each in an assignment: a container that is not running stops the script
# here with its log (container_ip) instead of producing `addresses: [""]`.
inventory_ip="$(container_ip "$INVENTORY_CONTAINER")"
payment_ip="$(container_ip "$PAYMENT_SIDECAR")"
require_running "$PAYMENT_CONTAINER"
localstack_ip="$(container_ip "$LOCALSTACK_CONTAINER")"
{
    endpoint_slice inventory-service "$inventory_ip" \
        "  - {name: http, port: 8082, protocol: TCP}"
    endpoint_slice payment-service "$payment_ip" \
        "  - {name: http, port: 8081, protocol: TCP}
  - {name: sidecar-metrics, port: 8888, protocol: TCP}"
    endpoint_slice localstack "$localstack_ip" \
        "  - {name: gateway, port: 4566, protocol: TCP}"
} | kubectl --context "$CONTEXT" apply -f - >/dev/null

# The fulfilment function calls the two containers at their addresses on the kind network,
# where LocalStack starts its execution environments.
"$REPO/localstack/deploy-lambda.sh" fulfilment \
    "PAYMENT_URL=http://$payment_ip:8081" "INVENTORY_URL=http://$inventory_ip:8082" >/dev/null
queue_url="$("$REPO/localstack/deploy-queue.sh" | tail -n1)"
[[ "$queue_url" == http* ]] || die "no queue URL from localstack/deploy-queue.sh"

# The function URL's and the queue URL's host names (<id>.lambda-url.<region>.localhost.
# localstack.cloud, sqs.<region>.localhost.localstack.cloud) resolve to 127.0.0.1 on the
# internet; in the pod they point at the Service localstack. (One hostAliases entry per
# address: a patch replaces the entry's whole list of names.)
url_host="$(sed -E 's#^https?://([^/:]+).*#\1#' <<<"$fraud_check_url")"
queue_host="$(sed -E 's#^https?://([^/:]+).*#\1#' <<<"$queue_url")"
say "order-service calls fraud-check at $fraud_check_url and sends order.placed to $queue_url"
patch=$(
    cat <<JSON
{"spec": {"template": {"spec": {
  "hostAliases": [{"ip": "$LOCALSTACK_CLUSTER_IP", "hostnames": ["$url_host", "$queue_host"]}],
  "containers": [{"name": "order-service",
                  "env": [{"name": "FRAUD_CHECK_URL", "value": "$fraud_check_url"},
                          {"name": "ORDERS_QUEUE", "value": "$queue_url"}]}]
}}}}
JSON
)
kc patch deployment order-service --type strategic --patch "$patch" >/dev/null
