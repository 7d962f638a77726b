#!/usr/bin/env bash
# Module 01's reference solution, as commands: place an order, read its trace from the
# explorer's Jaeger API (what the UI shows), and give lab check 01 the answers read from it.
# Needs the lab running (make run) and `lab` on PATH (docs/workshop/README.md, "Before you start").
set -euo pipefail

trace_id=$(curl -fsS -X POST http://127.0.0.1:8080/orders \
  -H 'content-type: application/json' \
  -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["trace_id"])')
echo "order placed, trace $trace_id"

# The Lambda flushes its spans as each invocation ends and the collectors batch for a moment:
# wait until all four workloads' server spans are in, then until the span count stops moving.
answers=$(python3 - "$trace_id" <<'PY'
import json, sys, time, urllib.request
trace_id = sys.argv[1]
downstream = ["inventory-service", "fraud-check", "payment-service"]
last, stable, deadline = None, 0, time.time() + 60
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:16686/api/traces/{trace_id}", timeout=5) as r:
            trace = json.load(r)["data"][0]
    except Exception:
        time.sleep(0.5)
        continue
    service = {p: v["serviceName"] for p, v in trace["processes"].items()}
    def server(s):
        return next((sp for sp in trace["spans"] if service[sp["processID"]] == s
                     and any(t["key"] == "span.kind" and t["value"] == "server" for t in sp["tags"])), None)
    if all(server(s) for s in downstream):
        count = len(trace["spans"])
        stable = stable + 1 if count == last else 0
        last = count
        if stable >= 4:
            slowest = max(downstream, key=lambda s: server(s)["duration"])
            print(f"spans={count} slowest={slowest}")
            sys.exit(0)
    time.sleep(0.5)
sys.exit("the trace did not complete within 60 s")
PY
)
echo "read from the trace: $answers"
read -r spans slowest <<<"$answers"

# The business span's name is on the trace page too: order-service's span with order.id.
lab check 01 --answer "$spans" --answer "$slowest" --answer business-span=order_service.process_order
