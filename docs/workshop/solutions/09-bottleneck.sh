#!/usr/bin/env bash
# Module 09's reference solution, as commands: the same load with the single connection
# planted and then fixed, one order with the downstream calls in a row and one with them side
# by side, then lab check 09 (which computes both p99s from the traces).
# Needs the lab running and `lab` and `traffic` on PATH.
set -euo pipefail

load() {
  traffic --scenario checkout --requests 60 --rate 20 --concurrency 8 | grep '^latency'
}

lab fault order-service db_single_connection
load
lab fault order-service --off db_single_connection
load

# The second bottleneck: the fraud check and the payment one after the other, then together.
order() {
  curl -fsS -o /dev/null -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
    -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'
}
lab fault order-service sequential_downstream_calls
order
lab fault order-service --off sequential_downstream_calls
order

for _ in $(seq 1 60); do
  if lab check 09 --answer 'wait=wait for connection' >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 09 --answer 'wait=wait for connection'
