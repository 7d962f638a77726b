#!/usr/bin/env bash
# Module 02's reference solution, as commands: one order through all four workloads, then the
# answers, each read from a resource attribute (the explorer's "Process" section) or from the
# HTTP semantic conventions. Needs the lab running and `lab` on PATH.
set -euo pipefail

curl -fsS -X POST http://127.0.0.1:8080/orders \
  -H 'content-type: application/json' \
  -d '{"customer_id":"c-7","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'
echo

# The fraud-check Lambda's spans arrive as its invocation ends: give the trace a moment.
for _ in $(seq 1 40); do
  if lab check 02 \
    --answer node=lab-node-1 \
    --answer instance=i-0lab5e7c1d2f3a9b4 \
    --answer launch-type=fargate \
    --answer lambda-platform=aws_lambda \
    --answer status-attribute=http.response.status_code >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 02 \
  --answer node=lab-node-1 \
  --answer instance=i-0lab5e7c1d2f3a9b4 \
  --answer launch-type=fargate \
  --answer lambda-platform=aws_lambda \
  --answer status-attribute=http.response.status_code
