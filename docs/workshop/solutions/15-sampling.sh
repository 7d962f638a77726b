#!/usr/bin/env bash
# Module 15's reference solution, as commands, run in the checkout after module 13's: a
# tail_sampling processor that keeps every error trace and a tenth of the rest, in a traces
# pipeline of the second backend's own (taken out of the main one), validated. Then the lab
# must be restarted with it (make workshop GATEWAY=workshop/gateway.yaml) and step 3's traffic
# sent before `lab check 15` passes. Needs `collector` on PATH.
set -euo pipefail

[ -f workshop/gateway.yaml ] || { echo "run module 13's solution first" >&2; exit 1; }
python3 - <<'PY'
import re
path = "workshop/gateway.yaml"
text = open(path).read()
if "tail_sampling:" not in text:
    text = text.replace("\nprocessors:\n", """
processors:
  tail_sampling:
    decision_wait: 10s
    policies:
      - name: every-error
        type: status_code
        status_code:
          status_codes: [ERROR]
      - name: a-tenth-of-the-rest
        type: probabilistic
        probabilistic:
          sampling_percentage: 10
""", 1)
    # The main traces pipeline no longer sends the second backend everything...
    text = text.replace(", otlp_http/vendor]", "]", 1)
    # ... its own pipeline, after the main one, sends it a sample.
    text = re.sub(r"(\n  pipelines:\n    traces:\n(?:      .*\n)*)", lambda m: m.group(1) + """    traces/vendor:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: [otlp_http/vendor]
""", text, count=1)
open(path, "w").write(text)
PY
collector validate --config workshop/gateway.yaml
