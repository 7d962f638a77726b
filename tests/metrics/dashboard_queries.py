"""The PromQL queries of the otel-lab Grafana dashboards, with Grafana's variables filled in
as Grafana would fill them for a freshly opened dashboard. Shared by lint.py (parses every
query) and test_dashboards.py (runs every query against a real lab)."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
PROVISIONING_DIRS = [REPO / "grafana" / "provisioning-local", REPO / "grafana" / "provisioning-kind"]

# What Grafana computes with the Prometheus data source's timeInterval of 5s (local mode):
# $__interval is the step of a 15-minute graph, never below timeInterval; $__rate_interval
# is max($__interval + timeInterval, 4 × timeInterval).
BUILTIN_INTERVALS = {"__interval": "5s", "__rate_interval": "20s"}

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass
class Query:
    dashboard: str  # file name
    panel: str  # panel title
    ref: str  # refId
    expr: str  # as written in the dashboard
    promql: str  # with the variables substituted
    instant: bool
    exemplar: bool

    @property
    def label(self):
        return f"{self.dashboard} / {self.panel} [{self.ref}]"


def load_dashboards():
    """(file name, parsed JSON) of every dashboard, in name order."""
    return [(path.name, json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(DASHBOARDS_DIR.glob("*.json"))]


def panels(dashboard):
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def time_range(dashboard):
    """The dashboard's default range as a PromQL duration: now-15m → 15m."""
    start = dashboard.get("time", {}).get("from", "now-15m")
    match = re.fullmatch(r"now-(\d+[smhdw])", start)
    if not match:
        raise ValueError(f"dashboard {dashboard.get('uid')}: time.from {start!r} is not now-<duration>")
    return match.group(1)


def variable_values(dashboard):
    """Each variable's value on opening the dashboard: its saved `current` value."""
    values = dict(BUILTIN_INTERVALS)
    values["__range"] = time_range(dashboard)
    for variable in dashboard.get("templating", {}).get("list", []):
        current = variable.get("current", {}).get("value")
        if current in (None, "", []):
            raise ValueError(f"dashboard {dashboard.get('uid')}: variable ${variable['name']} "
                             "has no current value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else "(" + "|".join(current) + ")"
        values[variable["name"]] = current
    return values


def substitute(expr, values):
    """Grafana's interpolation: known variables replaced, anything else left as written
    (label_replace's "$1" must survive; a misspelt variable then fails to parse)."""
    def replace(match):
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))
    return VARIABLE.sub(replace, expr)


def queries():
    """Every Prometheus query of every dashboard."""
    found = []
    for name, dashboard in load_dashboards():
        values = variable_values(dashboard)
        for panel in panels(dashboard):
            for t in panel.get("targets", []):
                if "expr" not in t:
                    continue
                promql = substitute(t["expr"], values)
                found.append(Query(
                    dashboard=name,
                    panel=panel.get("title", "(untitled)"),
                    ref=t.get("refId", "?"),
                    expr=t["expr"],
                    promql=promql,
                    instant=bool(t.get("instant")) and not t.get("range"),
                    exemplar=bool(t.get("exemplar")),
                ))
    return found
