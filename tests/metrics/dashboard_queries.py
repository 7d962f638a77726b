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


TOKEN = re.compile(r'''\s*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([a-zA-Z_:][a-zA-Z0-9_:]*)|(\d[\w.]*)|(=~|!~|!=|==|>=|<=|.))''')
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "atan2",
            # Aggregations may be followed by `by (...)` rather than `(`.
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def tokens(promql):
    pos = 0
    out = []
    while pos < len(promql):
        match = TOKEN.match(promql, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
        string, ident, number, punct = match.groups()
        if string is not None:
            out.append(("str", string))
        elif ident is not None:
            out.append(("id", ident))
        elif number is not None:
            out.append(("num", number))
        elif punct is not None and punct.strip():
            out.append(("p", punct))
    return out


@dataclass(frozen=True)
class Selector:
    """An instant-vector selector: a metric name and the label names its matchers use."""

    metric: str
    labels: tuple

    def checks(self):
        """PromQL selectors that must match series if the names are right: the metric, and
        the metric with each matched label present. (Values may rightly match nothing:
        `status_code="STATUS_CODE_ERROR"` when nothing failed.)"""
        yield self.metric
        for label in self.labels:
            yield f'{self.metric}{{{label}!=""}}'


def selectors(promql):
    """The instant-vector selectors of a PromQL expression, in order: what must exist for
    the query to mean anything. A query can return data while one of its selectors matches
    nothing (`x or vector(0)`); checking each selector catches a misspelt x there too."""
    toks = tokens(promql)
    found = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if kind == "id" and text in LABEL_LISTS and nxt == ("p", "("):
            # by (a, b): label names, not metrics.
            depth, i = 0, i + 1
            while i < len(toks):
                if toks[i] == ("p", "("):
                    depth += 1
                elif toks[i] == ("p", ")"):
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            i += 1
            continue
        if kind == "id" and (text in KEYWORDS or nxt == ("p", "(")):
            i += 1
            continue
        if kind == "id":
            labels = []
            j = i + 1
            if nxt == ("p", "{"):
                k = j
                while k < len(toks) and toks[k] != ("p", "}"):
                    if toks[k][0] == "id" and k + 1 < len(toks) and toks[k + 1][1] in ("=", "!=", "=~", "!~"):
                        labels.append(toks[k][1])
                    k += 1
                j = k + 1
            found.append(Selector(text, tuple(labels)))
            i = j
            continue
        i += 1
    return found
