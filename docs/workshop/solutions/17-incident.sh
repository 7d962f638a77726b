#!/usr/bin/env bash
# Module 17's reference solution: an incident started, traffic sent, and the problems found
# the way a learner finds them — from the explorer's traces and the metrics on :8889, never
# from lab fault — then named to lab check 17. The seed is the first argument (default 7).
# Needs the lab running and `lab` and `traffic` on PATH.
set -euo pipefail
seed="${1:-7}"

# Only what happens from now on counts: traces and series left by earlier modules are old.
since=$(python3 -c 'import time; print(int(time.time() * 1e6))')
before=$(curl -fsS http://127.0.0.1:8889/metrics | grep '^orders_created_total{.*customer_id=' || true)
lab incident --seed "$seed"
traffic --scenario checkout --requests 150 --rate 30 --concurrency 8 >/dev/null
sleep 8  # the last spans and metric points through the collectors' batches

found=$(BEFORE="$before" python3 - "$since" <<'PY'
import json, os, statistics, sys, urllib.parse, urllib.request

since = int(sys.argv[1])
def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()
def traces(service, operation=None):
    q = {"service": service, "limit": 1000, "lookback": "1h"}
    if operation:
        q["operation"] = operation
    data = json.loads(get("http://127.0.0.1:16686/api/traces?" + urllib.parse.urlencode(q)))["data"]
    return [t for t in data if min(s["startTime"] for s in t["spans"]) >= since]
def service(t, s):
    return t["processes"][s["processID"]]["serviceName"]
def spans(t, svc=None, name=None):
    return [s for s in t["spans"] if (svc is None or service(t, s) == svc) and (name is None or s["operationName"] == name)]

checkouts = traces("order-service", "POST /orders")
found = []
# Checkouts queue for order-service's one connection: waits as long as whole checkouts, not
# the millisecond a statement may wait for another's to finish.
if any(s["duration"] > 50_000 for t in checkouts for s in spans(t, "order-service", "wait for connection")):
    found.append("db_single_connection")
# payment-service starts traces of its own: its server span has no parent in its trace.
payments = traces("payment-service", "POST /payments")
if any(not s["references"] for t in payments for s in spans(t, "payment-service", "POST /payments")):
    found.append("drop_trace_context")
# orders.created gained per-customer series during the incident.
after = {l.rsplit(" ", 1)[0]: l.rsplit(" ", 1)[1] for l in get("http://127.0.0.1:8889/metrics").splitlines()
         if l.startswith("orders_created_total{") and "customer_id=" in l}
old = {l.rsplit(" ", 1)[0]: l.rsplit(" ", 1)[1] for l in os.environ["BEFORE"].splitlines() if l}
if any(old.get(k) != v for k, v in after.items()):
    found.append("customer_id_metric_label")
# The fraud check and the payment, one after the other in (nearly) every checkout.
def sequential(t):
    fraud = spans(t, "fraud-check", "fraud-check") or spans(t, "fraud-check")
    pay = spans(t, "payment-service", "POST /payments")
    if not fraud or not pay:
        return None
    f, p = fraud[0], pay[0]
    return p["startTime"] >= f["startTime"] + f["duration"] or f["startTime"] >= p["startTime"] + p["duration"]
verdicts = [v for v in map(sequential, checkouts) if v is not None]
if verdicts and sum(verdicts) > 0.9 * len(verdicts):
    found.append("sequential_downstream_calls")
# A SELECT per product in one reservation.
if any(len(spans(t, "inventory-service", "SELECT products")) > 1 for t in checkouts):
    found.append("n_plus_one_queries")
# A span per line priced.
if any(spans(t, "inventory-service", "inventory.price_item") for t in checkouts):
    found.append("span_per_item")
# inventory-service's statements are slow on their own (milliseconds, not microseconds).
statements = [s["duration"] for t in checkouts for s in spans(t, "inventory-service")
              if any(tag["key"] == "db.system.name" for tag in s["tags"]) and s["operationName"] != "wait for connection"]
if statements and statistics.median(statements) > 5000:
    found.append("slow_inventory_queries")
# Reservations wait for a lock of their own.
if any(spans(t, "inventory-service", "inventory.wait_for_lock") for t in checkouts):
    found.append("inventory_lock")
print(",".join(found))
PY
)
echo "found: $found"
lab check 17 --answer "problems=$found"
