#!/usr/bin/env bash
# Module 10's reference solution, as commands: one browse of the inventory so the explorer
# knows the operation the filter drops, the lab's gateway config copied to
# workshop/gateway.yaml, 10-pipelines.patch applied to it (an attributes processor stamping
# workshop.attendee on every span, a filter dropping GET /inventory spans, both in the traces
# pipeline), validated, and lab check 10. Run it from the checkout with the lab running and
# `lab` and `collector` on PATH.
set -euo pipefail
solutions="$(cd "$(dirname "$0")" && pwd)"

curl -fsS http://127.0.0.1:8082/inventory >/dev/null
# inventory-service exports spans every second or so: wait until the explorer lists it.
for _ in $(seq 1 40); do
  if curl -fsS http://127.0.0.1:16686/api/services/inventory-service/operations | grep -q '"GET /inventory"'; then
    break
  fi
  sleep 0.5
done

mkdir -p workshop
cp crates/collector/configs/local/gateway.yaml workshop/gateway.yaml
git apply "$solutions/10-pipelines.patch"
collector validate --config workshop/gateway.yaml

lab check 10
