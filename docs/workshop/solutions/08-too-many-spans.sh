#!/usr/bin/env bash
# Module 08's reference solution, as commands: both inventory problems on, a five-line order,
# both off, the same order again, then lab check 08. Needs the lab running and `lab` on PATH.
set -euo pipefail

order='{"customer_id":"c-42","items":[{"sku":"CB-007","quantity":1},{"sku":"DM-011","quantity":1},{"sku":"HB-017","quantity":1},{"sku":"MS-002","quantity":1},{"sku":"PB-016","quantity":1}],"payment":{"card_token":"tok_visa"}}'
place() {
  curl -fsS -o /dev/null -X POST http://127.0.0.1:8080/orders -H 'content-type: application/json' -d "$order"
}

lab fault inventory-service span_per_item n_plus_one_queries
place
lab fault inventory-service --off span_per_item --off n_plus_one_queries
place

for _ in $(seq 1 60); do
  if lab check 08 --answer noise=inventory.price_item --answer 'signal=SELECT products' >/dev/null; then
    break
  fi
  sleep 0.5
done
lab check 08 --answer noise=inventory.price_item --answer 'signal=SELECT products'
