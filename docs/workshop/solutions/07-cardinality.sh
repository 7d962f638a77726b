#!/usr/bin/env bash
# Module 07's reference solution, as commands: the per-customer label on, checkouts from many
# customers, the series counted on :8889, the label switched off and one more order, then
# lab check 07. Needs the lab running and `lab` and `traffic` on PATH.
set -euo pipefail

lab fault order-service customer_id_metric_label
traffic --scenario checkout --requests 80 --rate 20 >/dev/null

# The gateway's exporter has the series once the SDK's export and the batch have passed:
# count until the number stops moving (two readings 6 s apart, past the export interval).
count() { curl -fsS http://127.0.0.1:8889/metrics | grep -c '^orders_created_total{' || true; }
series=$(count)
for _ in $(seq 1 10); do
  sleep 6
  now=$(count)
  customers=$(curl -fsS http://127.0.0.1:8889/metrics | grep '^orders_created_total{' | grep -c 'customer_id=' || true)
  [ "$now" = "$series" ] && [ "$customers" -ge 20 ] && break
  series=$now
done
echo "orders_created_total: $series series"

lab fault order-service --off customer_id_metric_label
curl -fsS -o /dev/null -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' \
  -d '{"customer_id":"c-42","items":[{"sku":"KB-001","quantity":1}],"payment":{"card_token":"tok_visa"}}'

for _ in $(seq 1 60); do
  if lab check 07 --answer "series=$series" --answer label=customer_id >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 07 --answer "series=$series" --answer label=customer_id
