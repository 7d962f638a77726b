#!/usr/bin/env bash
# Module 06's reference solution, as commands: five checkouts, then the RED numbers read off
# the gateway's Prometheus exporter (:8889) as the PromQL of the page computes them, and
# lab check 06 with them. Needs the lab running and `lab` on PATH.
set -euo pipefail

# order-service's checkouts as the SDK histogram and the span metrics count them, and the
# SDK's mean duration in ms: the PromQL of the page, computed from the raw page.
read_page() {
  curl -fsS http://127.0.0.1:8889/metrics | python3 -c '
import re, sys
def total(name, want):
    n = 0.0
    for line in sys.stdin_lines:
        m = re.match(r"^" + name + r"\{(.*)\} (\S+)$", line)
        if m and all(f"{k}=\"{v}\"" in m.group(1) for k, v in want.items()):
            n += float(m.group(2))
    return n
sys.stdin_lines = sys.stdin.read().splitlines()
sdk = {"job": "order-service", "http_request_method": "POST", "http_route": "/orders"}
spans = {"service_name": "order-service", "span_name": "POST /orders", "span_kind": "SPAN_KIND_SERVER"}
count = total("http_server_request_duration_seconds_count", sdk)
seconds = total("http_server_request_duration_seconds_sum", sdk)
calls = total("traces_span_metrics_calls_total", spans)
print(int(count), int(calls), round(seconds / count * 1000, 2) if count else 0)
'
}
read -r before _ _ <<<"$(read_page)"
for _ in 1 2 3 4 5; do
  curl -fsS -o /dev/null -X POST http://127.0.0.1:8080/orders \
    -H 'content-type: application/json' \
    -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'
done

# SDK metrics are exported every 5 s and span metrics flushed every 5 s: wait until both
# sources have counted the five orders (they agree, and stop moving).
previous=""
for _ in $(seq 1 60); do
  now=$(read_page)
  read -r requests calls mean_ms <<<"$now"
  if [ "$requests" -ge $((before + 5)) ] && [ "$requests" = "$calls" ] && [ "$now" = "$previous" ]; then
    break
  fi
  previous=$now
  sleep 0.5
done
echo "requests=$requests calls=$calls mean-ms=$mean_ms"

lab check 06 --answer "requests=$requests" --answer "calls=$calls" --answer "mean-ms=$mean_ms" --answer kind-label=span_kind
