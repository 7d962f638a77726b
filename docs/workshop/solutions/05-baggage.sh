#!/usr/bin/env bash
# Module 05's reference solution, as commands: an order with a session id of our own as W3C
# baggage, then lab check 05 with that id (the check repeats the explorer's tag search with
# it). Needs the lab running and `lab` on PATH.
set -euo pipefail

session="solution-$(date +%s)-$$"
curl -fsS -X POST http://127.0.0.1:8080/orders \
  -H 'content-type: application/json' \
  -H "baggage: session.id=$session" \
  -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'
echo

# The Lambda's span arrives as its invocation ends, and the collectors batch for a moment:
# retry until every workload's server span is in. customer.tier is what order-service adds
# (routes/orders.rs, with_baggage).
for _ in $(seq 1 60); do
  if lab check 05 --answer "session=$session" --answer added=customer.tier >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 05 --answer "session=$session" --answer added=customer.tier
