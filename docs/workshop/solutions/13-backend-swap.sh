#!/usr/bin/env bash
# Module 13's reference solution, as commands, run in the checkout: an OTLP/HTTP exporter to
# the second backend added to workshop/gateway.yaml's traces pipeline (beside the lab's
# explorer), validated. Then the lab must be restarted with it:
#   make workshop GATEWAY=workshop/gateway.yaml
# and an order placed before `lab check 13` passes. Needs `collector` on PATH.
set -euo pipefail

mkdir -p workshop
[ -f workshop/gateway.yaml ] || cp crates/collector/configs/local/gateway.yaml workshop/gateway.yaml
python3 - <<'PY'
import re
path = "workshop/gateway.yaml"
text = open(path).read()
if "otlp_http/vendor:" not in text:
    text = text.replace("\nexporters:\n", "\nexporters:\n  otlp_http/vendor:\n    endpoint: http://127.0.0.1:4518\n", 1)
    # The traces pipeline's exporters list, whatever else module 10 put in it.
    text = re.sub(r"(\n    traces:\n(?:      .*\n)*?      exporters: \[)([^\]]*)\]",
                  lambda m: f"{m.group(1)}{m.group(2)}, otlp_http/vendor]", text, count=1)
open(path, "w").write(text)
PY
collector validate --config workshop/gateway.yaml
