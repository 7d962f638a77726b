#!/usr/bin/env bash
# Module 18's reference solution, as commands: place an order and follow the link from its
# trace to its fulfilment; break the hop (drop_message_context), place an order, find its
# fulfilment by order.id; repair, place another order, then lab check 18. Needs the lab
# running and `lab` on PATH.
set -euo pipefail

order() {
  curl -fsS -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
    -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'
}

# The fulfilment linking to a trace, through the explorer's links API (what the trace page's
# "Linked from" shows); the fulfilment runs a second or two later and its spans follow.
linked_from() {
  python3 - "$1" <<'PY'
import json, sys, time, urllib.request
deadline = time.time() + 60
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:16686/api/lab/links/{sys.argv[1]}", timeout=5) as r:
            linked = [l for l in json.load(r)["data"]["linkedFrom"] if l["rootService"] == "fulfilment"]
        if linked:
            print(linked[0]["traceID"])
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.5)
sys.exit("no fulfilment linked to the order's trace within 60 s")
PY
}

# The fulfilment trace that recorded an order id: the tag search of step 3.
fulfilment_of_order() {
  python3 - "$1" <<'PY'
import json, sys, time, urllib.parse, urllib.request
query = urllib.parse.urlencode({"service": "fulfilment", "tags": json.dumps({"order.id": sys.argv[1]}), "limit": 1})
deadline = time.time() + 60
while time.time() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:16686/api/traces?{query}", timeout=5) as r:
        data = json.load(r)["data"]
    if data:
        print(data[0]["traceID"])
        sys.exit(0)
    time.sleep(0.5)
sys.exit("the fulfilment's trace did not reach the explorer within 60 s")
PY
}

field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

placed=$(order)
trace=$(echo "$placed" | field trace_id)
fulfilment=$(linked_from "$trace")
echo "order trace $trace is linked from fulfilment $fulfilment"

lab fault order-service drop_message_context
broken=$(order)
broken_id=$(echo "$broken" | field id)
orphan=$(fulfilment_of_order "$broken_id")
echo "order $broken_id was fulfilled in $orphan, which links to nothing"

lab fault order-service --off drop_message_context
order >/dev/null

# The broken order must be old enough for "nothing links to it" to be final, and the
# repaired order's fulfilment must have arrived: retry for a while.
for _ in $(seq 1 90); do
  if lab check 18 --answer "fulfilment=$fulfilment" --answer "linked_span=send orders" --answer "orphan=$orphan" >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 18 --answer "fulfilment=$fulfilment" --answer "linked_span=send orders" --answer "orphan=$orphan"
