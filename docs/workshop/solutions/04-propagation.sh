#!/usr/bin/env bash
# Module 04's reference solution, as commands: break the payment hop, place an order, find
# payment-service's own trace for it by the order id both services record, repair the hop,
# place another order, then lab check 04. Needs the lab running and `lab` on PATH.
set -euo pipefail

order() {
  curl -fsS -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
    -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

lab fault order-service drop_trace_context
order_id=$(order)
echo "broken checkout: order $order_id"

# payment-service's trace for that order: the tag search of step 2 (the spans take a moment).
orphan=$(python3 - "$order_id" <<'PY'
import json, sys, time, urllib.parse, urllib.request
query = urllib.parse.urlencode({"service": "payment-service", "operation": "payment.authorize", "tags": json.dumps({"order.id": sys.argv[1]}), "limit": 1})
deadline = time.time() + 60
while time.time() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:16686/api/traces?{query}", timeout=5) as r:
        data = json.load(r)["data"]
    if data:
        print(data[0]["traceID"])
        sys.exit(0)
    time.sleep(0.5)
sys.exit("payment-service's trace did not reach the explorer within 60 s")
PY
)
echo "payment-service's own trace: $orphan"

lab fault order-service --off drop_trace_context
order >/dev/null

# The repaired checkout's spans arrive through three collectors: retry for a while.
for _ in $(seq 1 60); do
  if lab check 04 --answer "orphan=$orphan" --answer hop=payment-service >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 04 --answer "orphan=$orphan" --answer hop=payment-service
