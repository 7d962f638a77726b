#!/usr/bin/env python3
"""`make metrics-lint`: the static checks of the metrics side, no lab needed.

- promtool check config: prometheus/prometheus-local.yml and prometheus-kind.yml (which
  also checks the rule files they load);
- promtool check rules and promtool test rules (prometheus/tests/*.yml: every alert,
  firing and not firing);
- the unit tests of the query helpers (tests/metrics/test_queries.py);
- grafana/build_dashboards.py --check: the dashboard JSON is what the generator writes;
- every dashboard is JSON with a unique uid, unique panel ids, and data source uids that the
  provisioning (local and Kind) defines; every provisioned cross-reference (exemplar and
  traces-to-metrics links) names a provisioned uid;
- every dashboard query, variables filled in, parses as PromQL (promtool parses it as the
  expression of a recording rule).

Exit status 0 when everything passes; each failure is printed with what to fix.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import dashboard_queries as dq

REPO = dq.REPO
PROMETHEUS_DIR = REPO / "prometheus"


class Checks:
    def __init__(self):
        self.failures = []

    def ok(self, what):
        print(f"ok    {what}")

    def fail(self, what, detail=""):
        self.failures.append(what)
        print(f"FAIL  {what}")
        if detail:
            print("      " + detail.strip().replace("\n", "\n      "))

    def run(self, what, command):
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if result.returncode == 0:
            self.ok(what)
        else:
            self.fail(what, result.stdout + result.stderr)
        return result


def provisioned_datasources(checks):
    """uid → (type, file) of every provisioned data source, and the uids they refer to.

    The provisioning files are YAML; this reads the few keys it needs line by line, so the
    check needs nothing beyond the standard library.
    """
    defined, referenced = {}, []
    for directory in dq.PROVISIONING_DIRS:
        files = sorted((directory / "datasources").glob("*.y*ml"))
        if not files:
            checks.fail(f"{directory.relative_to(REPO)}/datasources has no provisioning file")
        for path in files:
            uid = None
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.lstrip().startswith("#"):
                    continue
                item = re.match(r"\s*-\s+name:", line)
                if item:
                    uid = None
                match = re.match(r"\s*(?:-\s+)?uid:\s*['\"]?([\w-]+)", line)
                if match:
                    uid = match.group(1)
                    defined.setdefault(uid, set()).add(path.relative_to(REPO).as_posix())
                match = re.match(r"\s*(?:-\s+)?datasourceUid:\s*['\"]?([\w-]+)", line)
                if match:
                    referenced.append((path.relative_to(REPO).as_posix(), match.group(1)))
    return defined, referenced


def datasource_uids(node):
    """Every data source uid a dashboard JSON refers to (panels, targets, variables)."""
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            yield ds["uid"]
        elif isinstance(ds, str) and ds:
            yield ds
        for value in node.values():
            yield from datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_uids(value)


def check_promql(checks, queries, promtool):
    """Writes every query as a recording rule and lets promtool parse the file."""
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard_query_{i}", "expr": q.promql} for i, q in enumerate(queries)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard-queries.yml"
        # JSON is YAML, so no YAML writer is needed.
        path.write_text(json.dumps(rules, indent=1), encoding="utf-8")
        result = subprocess.run([promtool, "check", "rules", str(path)],
                                capture_output=True, text=True)
    if result.returncode == 0:
        checks.ok(f"{len(queries)} dashboard queries parse as PromQL")
        return
    # Name the panels of the rules promtool complains about.
    text = result.stdout + result.stderr
    named = re.sub(r"dashboard_query_(\d+)",
                   lambda m: f"{queries[int(m.group(1))].label}: {queries[int(m.group(1))].expr}",
                   text)
    checks.fail("dashboard queries parse as PromQL", named)


def main():
    checks = Checks()
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not found: install the Debian package `prometheus` "
              "(sudo apt-get install prometheus)", file=sys.stderr)
        return 1

    for config in ("prometheus-local.yml", "prometheus-kind.yml"):
        checks.run(f"promtool check config prometheus/{config}",
                   [promtool, "check", "config", f"prometheus/{config}"])
    rule_files = sorted(p.relative_to(REPO).as_posix() for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    checks.run("promtool check rules " + " ".join(rule_files),
               [promtool, "check", "rules", *rule_files])
    test_files = sorted(p.relative_to(REPO).as_posix() for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    checks.run("promtool test rules " + " ".join(test_files),
               [promtool, "test", "rules", *test_files])
    checks.run("unit tests of tests/metrics/dashboard_queries.py",
               [sys.executable, "-m", "unittest", "discover", "-q", "-s", "tests/metrics",
                "-p", "test_queries.py"])
    checks.run("grafana/build_dashboards.py --check",
               [sys.executable, "grafana/build_dashboards.py", "--check"])

    defined, referenced = provisioned_datasources(checks)
    for path, uid in referenced:
        if uid in defined:
            checks.ok(f"{path}: datasourceUid {uid} is provisioned")
        else:
            checks.fail(f"{path}: datasourceUid {uid} is not a provisioned data source uid "
                        f"(there are: {', '.join(sorted(defined))})")
    for directory in dq.PROVISIONING_DIRS:
        uids = {uid for uid, files in defined.items()
                if any(f.startswith(directory.relative_to(REPO).as_posix()) for f in files)}
        for needed in ("prometheus", "jaeger"):
            if needed not in uids:
                checks.fail(f"{directory.relative_to(REPO)} does not provision the data source "
                            f"uid {needed!r}")
        if not list((directory / "dashboards").glob("*.y*ml")):
            checks.fail(f"{directory.relative_to(REPO)}/dashboards has no dashboard provider")

    dashboards = []
    for path in sorted(dq.DASHBOARDS_DIR.glob("*.json")):
        try:
            dashboards.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as error:
            checks.fail(f"grafana/dashboards/{path.name} is not valid JSON: {error}")
    if not dashboards:
        checks.fail("grafana/dashboards/ holds no dashboard")
    seen_uids = {}
    for name, dashboard in dashboards:
        uid = dashboard.get("uid")
        if not uid or uid in seen_uids:
            checks.fail(f"{name}: dashboard uid {uid!r} missing or also used by {seen_uids.get(uid)}")
        seen_uids[uid] = name
        ids = [p.get("id") for p in dq.panels(dashboard)]
        if len(ids) != len(set(ids)) or None in ids:
            checks.fail(f"{name}: panel ids are missing or repeated")
        unknown = sorted({u for u in datasource_uids(dashboard)
                          if u not in defined and u != "-- Grafana --"})
        if unknown:
            checks.fail(f"{name}: data source uid(s) {', '.join(unknown)} not provisioned "
                        f"(there are: {', '.join(sorted(defined))})")
        else:
            checks.ok(f"{name}: JSON, unique ids, every data source uid provisioned")

    try:
        queries = dq.queries()
    except ValueError as error:
        checks.fail("dashboard variables", str(error))
        queries = []
    for q in queries:
        # What Grafana leaves uninterpolated: fine for label_replace's "$1", a typo otherwise.
        left = sorted({m.group(0) for m in dq.VARIABLE.finditer(q.promql)
                       if not (m.group(1) or m.group(2) or m.group(3)).isdigit()})
        if left:
            checks.fail(f"{q.label}: unknown variable(s) {', '.join(left)}")
    if queries:
        check_promql(checks, queries, promtool)

    if checks.failures:
        print(f"\nmetrics-lint: {len(checks.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("\nmetrics-lint: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
