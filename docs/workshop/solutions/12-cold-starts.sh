#!/usr/bin/env bash
# Module 12's reference solution, as commands: two orders (the function warm), a configuration
# change (the emulator recycles the environment, as Lambda does on update-function-configuration),
# one more order (a cold start of a function that had been warm), then the answers read from the
# explorer (tag search faas.coldstart=true) and from the span metrics on :8889. Needs the lab
# running and `lab` on PATH.
set -euo pipefail

order() {
  curl -fsS -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
    -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["trace_id"])'
}
order >/dev/null
order >/dev/null
lab fault fraud-check --latency-ms 20
cold=$(order)
lab fault fraud-check --clear
echo "the checkout after the change: trace $cold"

# Wait until the explorer has the cold start's span and the span metrics have counted it.
answers=$(python3 - "$cold" <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
cold = sys.argv[1]
query = urllib.parse.urlencode({"service": "fraud-check", "tags": json.dumps({"faas.coldstart": "true"}), "limit": 100})
deadline = time.time() + 60
while time.time() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:16686/api/traces?{query}", timeout=5) as r:
        found = cold in [t["traceID"] for t in json.load(r)["data"]]
    with urllib.request.urlopen("http://127.0.0.1:8889/metrics", timeout=5) as r:
        page = r.read().decode()
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
                  if line.startswith("traces_span_metrics_calls_total{")
                  and 'service_name="fraud-check"' in line and 'span_kind="SPAN_KIND_SERVER"' in line
                  and 'faas_coldstart="true"' in line)
    if found and counted >= 2:
        time.sleep(6)  # one more span metrics flush, so the count includes the cold start
        with urllib.request.urlopen("http://127.0.0.1:8889/metrics", timeout=5) as r:
            page = r.read().decode()
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
                      if line.startswith("traces_span_metrics_calls_total{")
                      and 'service_name="fraud-check"' in line and 'span_kind="SPAN_KIND_SERVER"' in line
                      and 'faas_coldstart="true"' in line)
        print(f"coldstarts={int(counted)}")
        sys.exit(0)
    time.sleep(0.5)
sys.exit("the cold start did not reach the explorer and :8889 within 60 s")
PY
)
echo "read from :8889: $answers"

# The idle timeout is in the emulator's start-up line in the lab's terminal: "idle timeout 1m".
lab check 12 --answer "trace=$cold" --answer "$answers" --answer idle=60
