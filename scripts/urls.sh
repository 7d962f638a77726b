#!/usr/bin/env bash
# Prints where the lab's UIs and entry points are. `make jaeger` / `make grafana` print one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
case "${1:-all}" in
    jaeger) echo "http://127.0.0.1:16686" ;;
    grafana) echo "http://127.0.0.1:3000" ;;
    *)
        cat <<TEXT
The lab is up (Kind cluster $CLUSTER + LocalStack):
  order API     http://127.0.0.1:8080     make traffic sends here
  inventory     http://127.0.0.1:8082     the "EC2 instance"; make traffic browses it
  Jaeger        http://127.0.0.1:16686    follow one order across every service
  Grafana       http://127.0.0.1:3000     dashboards (folder otel-lab)
  Prometheus    http://127.0.0.1:9090     RED and SLO rules, alerts
  OTLP gateway  127.0.0.1:4317 (gRPC), 127.0.0.1:4318 (HTTP) for your own programs
  LocalStack    http://127.0.0.1:4566     awslocal lambda list-functions
Next: make traffic, then make status / make logs SERVICE=otel-gateway; make teardown ends it.
TEXT
        ;;
esac
