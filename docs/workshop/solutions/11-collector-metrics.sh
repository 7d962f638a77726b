#!/usr/bin/env bash
# Module 11's reference solution, as commands: one span too large for the gateway's gRPC
# receiver (4 MiB once decompressed), sent to the agent over OTLP/HTTP, which accepts up to
# 20 MiB. The agent answers 200, its export to the gateway is refused for good, and only the
# agent's own metrics (:8887) count the loss. Needs the lab running and `lab` on PATH.
set -euo pipefail

python3 -c 'import json; print(json.dumps({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"workshop"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"oversized","kind":1,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000001000000","attributes":[{"key":"blob","value":{"stringValue":"x"*6000000}}]}]}]}]}))' >/tmp/oversized.json
curl -fsS -X POST http://127.0.0.1:4318/v1/traces -H 'content-type: application/json' --data-binary @/tmp/oversized.json
echo

# The agent batches for 200 ms before it exports: wait for the counter to move.
for _ in $(seq 1 40); do
  if curl -fsS http://127.0.0.1:8887/metrics | grep -q '^otelcol_exporter_send_failed_spans_total{.*} [1-9]'; then
    break
  fi
  sleep 0.25
done
curl -fsS http://127.0.0.1:8887/metrics | grep '^otelcol_exporter_send_failed_spans_total'

lab check 11 --answer metric=otelcol_exporter_send_failed_spans_total --answer tier=agent --answer limit=4
