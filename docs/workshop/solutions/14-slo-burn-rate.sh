#!/usr/bin/env bash
# Module 14's reference solution, as commands: payments failing at half the requests while
# checkouts come in, until Prometheus fires the fast-burn alert; the burn rate read from
# Prometheus's API and turned into hours; the fault removed; then lab check 14. Needs the lab
# running with Prometheus, and `lab` and `traffic` on PATH.
set -euo pipefail

lab fault payment-service --error-rate 0.5
fired=""
for _ in $(seq 1 12); do
  traffic --scenario checkout --requests 50 --rate 10 >/dev/null
  if curl -fsS http://127.0.0.1:9090/api/v1/alerts | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
sys.exit(0 if any(a["labels"]["alertname"] == "OrderServiceErrorBudgetFastBurn" and a["state"] == "firing" for a in alerts) else 1)'; then
    fired=yes
    break
  fi
done
lab fault payment-service --clear
[ -n "$fired" ] || { echo "the fast-burn alert did not fire" >&2; exit 1; }

burn=$(curl -fsS -G http://127.0.0.1:9090/api/v1/query \
  --data-urlencode 'query=job:slo_error_budget_burn_rate:rate1h{job="order-service"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
hours=$(python3 -c "print(round(720 / float('$burn'), 1))")
echo "burn rate $burn: a 30-day budget lasts $hours h"

lab check 14 --answer alert=OrderServiceErrorBudgetFastBurn --answer "burn-rate=$burn" --answer "hours=$hours"
