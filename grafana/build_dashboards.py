#!/usr/bin/env python3
"""The otel-lab Grafana dashboards, as code: writes grafana/dashboards/*.json.

Edit the dashboards here, then run `python3 grafana/build_dashboards.py` and commit both;
`make metrics-lint` runs it with --check and fails when the JSON is stale. (A dashboard
changed in the Grafana UI can be exported and its queries brought back here.)

Every query uses only metric and label names the lab really produces, as the gateway's
`prometheus` exporter writes them (OTel spec translation: `http.server.request.duration`
in s -> `http_server_request_duration_seconds_*`, counters get `_total`, attributes become
labels with `_`, job = service.name):

- the services' SDK metrics: http_server_request_duration_seconds, http_server_active_requests,
  http_client_request_duration_seconds, db_client_operation_duration_seconds (order- and
  inventory-service), orders_created_total, orders_value, payments_authorized_total,
  payments_declined_total, payments_timed_out_total, payments_amount, inventory_stock_level.
  They carry no exemplars: the Rust SDK (opentelemetry_sdk 0.33) has no exemplar reservoir
  and exports every data point with an empty exemplar list;
- the spanmetrics connector: traces_span_metrics_calls_total and
  traces_span_metrics_duration_milliseconds (service_name, span_name, span_kind,
  status_code, faas_coldstart), with exemplars (trace ids of sample spans): the lab's only
  exemplars, so only span-metric panels turn them on;
- the collectors' own metrics (scrape job otel-collector, label collector);
- the recording rules of prometheus/rules/.

tests/metrics/test_dashboards.py runs every query against a real lab and Prometheus.
"""

import argparse
import json
import sys
from pathlib import Path

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}

SERVER_SPANS = 'span_kind="SPAN_KIND_SERVER"'
LAMBDA_SPANS = 'service_name="fraud-check", span_kind="SPAN_KIND_SERVER"'
SLO_SELECTOR = 'job="order-service", http_route!~"/healthz|/admin/.*"'

# Where a client call goes, from the fixed ports of DESIGN.md (local mode talks to
# 127.0.0.1, so the address alone says nothing) or, in Kind, from the Service name.
CALL_TARGETS = [
    ("order-service", "8080"),
    ("payment-service", "8081"),
    ("inventory-service", "8082"),
    ("fraud-check", "9000"),
]


def call_edges_expr():
    """Calls per second between services, one series per edge, labelled id/source/target
    as Grafana's node graph wants them."""
    expr = "rate(http_client_request_duration_seconds_count[$__rate_interval])"
    names = "|".join(name for name, _ in CALL_TARGETS)
    expr = f'label_replace({expr}, "target", "$1", "server_address", "({names})([.].*)?")'
    for name, port in CALL_TARGETS:
        expr = f'label_replace({expr}, "target", "{name}", "server_port", "{port}")'
    expr = f'label_replace({expr}, "source", "$1", "job", "(.+)")'
    expr = f'label_join({expr}, "id", " -> ", "source", "target")'
    # `unless on (target) vector(1)` drops calls to anything else (target empty), which
    # would otherwise show as a nameless node.
    return f'sum by (id, source, target) ({expr}) unless on (target) vector(1)'


class Grid:
    """Lays panels left to right on Grafana's 24-column grid, wrapping to a new row."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def newline(self):
        if self.x:
            self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def row(self, title):
        self.newline()
        panel = {
            "type": "row",
            "title": title,
            "collapsed": False,
            "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "id": self.next_id,
        }
        self.next_id += 1
        self.y += 1
        return panel


def target(expr, legend="", ref="A", instant=False, table=False, exemplar=False):
    t = {
        "datasource": PROMETHEUS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "exemplar": exemplar,
    }
    if table:
        t["format"] = "table"
    return t


def refs(targets):
    for i, t in enumerate(targets):
        t.setdefault("refId", chr(ord("A") + i))
    return targets


def timeseries(title, targets, unit="short", description="", stack=False, min_zero=True,
               thresholds=None):
    defaults = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
        "color": {"mode": "palette-classic"},
    }
    if min_zero:
        defaults["min"] = 0
    if thresholds:
        defaults["thresholds"] = thresholds
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom",
                       "calcs": ["lastNotNull", "max"], "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def steps(*pairs):
    """Threshold steps: ("green", None), ("red", 0.5) ..."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in pairs]}


def stat(title, expr, unit="short", description="", thresholds=None, decimals=None):
    defaults = {"unit": unit, "color": {"mode": "thresholds"},
                "thresholds": thresholds or steps(("blue", None))}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": [target(expr, instant=True)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto",
                    "justifyMode": "auto", "orientation": "auto"},
    }


def bargauge(title, targets, unit="short", description="", thresholds=None):
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0, "color": {"mode": "thresholds"},
                                     "thresholds": thresholds or steps(("blue", None))},
                        "overrides": []},
        "options": {"orientation": "horizontal", "displayMode": "gradient",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "showUnfilled": True},
    }


def table(title, expr, value_name, unit="short", description="", columns=()):
    """An instant query shown as a table: one row per series, `columns` in that order."""
    # indexByName and excludeByName take the query's field names, before renameByName.
    order = {name: i for i, name in enumerate([*columns, "Value"])}
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": [target(expr, instant=True, table=True)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True, "sortBy": [{"displayName": value_name, "desc": True}]},
        "transformations": [{
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"Value": value_name},
                "indexByName": order,
            },
        }],
    }


def dashboard(uid, title, description, panels, variables=(), time_from="now-15m"):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["otel-lab"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "links": [{"title": "otel-lab dashboards", "type": "dashboards", "tags": ["otel-lab"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": list(variables)},
        "panels": panels,
    }


def query_variable(name, label, query, current):
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {"selected": True, "text": current, "value": current},
        "options": [],
    }


def error_ratio(selector, by, errors, window="$__rate_interval",
                metric="http_server_request_duration_seconds_count"):
    """Share of requests that failed; 0 (not absent) where there were requests and no
    failure, so a healthy route shows a flat line instead of nothing."""
    total = f"sum by ({by}) (rate({metric}{{{selector}}}[{window}]))"
    failed = f"sum by ({by}) (rate({metric}{{{selector}, {errors}}}[{window}]))"
    return f"({failed} or {total} * 0) / {total}"


# 1 ───────────────────────────────────────────────────────────────────────────────────────
def lab_overview():
    g = Grid()
    p = []
    p.append(g.row("The shop right now"))
    p.append(g.place(stat(
        "Requests/s, all services",
        f"sum(rate(traces_span_metrics_calls_total{{{SERVER_SPANS}}}[$__rate_interval]))",
        unit="reqps", decimals=1,
        description="Server spans per second across every service and the Lambda "
                    "(spanmetrics connector)."), 5, 4))
    p.append(g.place(stat(
        "Checkouts per minute",
        "sum(rate(orders_created_total[$__rate_interval])) * 60", decimals=1,
        description="orders.created from order-service: every checkout, however it ended "
                    "(stored as created, rejected or payment_failed, or refused as invalid, "
                    "out_of_stock or failed)."), 5, 4))
    p.append(g.place(stat(
        "order-service availability (1h)",
        '1 - job:slo_errors_per_request:ratio_rate1h{job="order-service"}',
        unit="percentunit", decimals=2,
        thresholds=steps(("red", None), ("orange", 0.99), ("green", 0.995)),
        description="Share of shopper requests (health and admin calls left out) that did "
                    "not answer 5xx, last hour. The SLO is 99.5% (prometheus/rules/slo.yml)."),
        5, 4))
    p.append(g.place(stat(
        "Error budget burn rate (1h)",
        'job:slo_error_budget_burn_rate:rate1h{job="order-service"}', decimals=1,
        thresholds=steps(("green", None), ("orange", 6), ("red", 14.4)),
        description="1 spends exactly the 30-day budget in 30 days. 14.4 over 1h and 5m "
                    "pages (OrderServiceErrorBudgetFastBurn), 6 over 6h and 30m too."), 4, 4))
    p.append(g.place(stat(
        "order-service p95 (5m)",
        'job:slo_request_duration_seconds:p95_5m{job="order-service"}', unit="s",
        thresholds=steps(("green", None), ("red", 0.5)),
        description="The latency objective: p95 under 500 ms (OrderServiceLatencyP95High)."),
        5, 4))

    p.append(g.row("RED per service, from the traces (spanmetrics): the Lambda included"))
    p.append(g.place(timeseries(
        "Request rate per service",
        [target(f"sum by (service_name) (rate(traces_span_metrics_calls_total{{{SERVER_SPANS}}}[$__rate_interval]))",
                "{{service_name}}")],
        unit="reqps"), 8, 8))
    p.append(g.place(timeseries(
        "Error ratio per service",
        [target(error_ratio(SERVER_SPANS, "service_name", 'status_code="STATUS_CODE_ERROR"',
                            metric="traces_span_metrics_calls_total"), "{{service_name}}")],
        unit="percentunit",
        description="Server spans with status Error (5xx; a 4xx is the client's mistake and "
                    "leaves the span unset)."), 8, 8))
    p.append(g.place(timeseries(
        "p95 latency per service",
        [target("histogram_quantile(0.95, sum by (service_name, le) ("
                f"rate(traces_span_metrics_duration_milliseconds_bucket{{{SERVER_SPANS}}}[$__rate_interval])))",
                "{{service_name}}")],
        unit="ms"), 8, 8))

    p.append(g.row("Who calls whom, and what is slow"))
    graph = {
        "type": "nodeGraph",
        "title": "Service graph (calls/s)",
        "description": "Edges are the services' own client calls (http.client.request.duration, "
                       "source = the caller, target from the port or Service name of the callee); "
                       "a node's number is its incoming calls per second. The trace explorer's "
                       "dependency graph shows the same from the traces.",
        "datasource": PROMETHEUS,
        "targets": [target(call_edges_expr(), ref="edges", instant=True, table=True)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"edges": {"mainStatUnit": "reqps"}, "nodes": {"mainStatUnit": "reqps"}},
        "transformations": [{
            "id": "organize",
            "options": {"excludeByName": {"Time": True},
                        "renameByName": {"Value": "mainstat", "Value #edges": "mainstat"}},
        }],
    }
    p.append(g.place(graph, 10, 12))
    p.append(g.place(table(
        "Top slow operations (p95 over the time range, span metrics)",
        "topk(10, histogram_quantile(0.95, sum by (service_name, span_name, span_kind, le) ("
        "rate(traces_span_metrics_duration_milliseconds_bucket[$__range]))) > 0)",
        "p95", unit="ms", columns=("service_name", "span_name", "span_kind"),
        description="Every span kind: server requests, the business spans "
                    "(order_service.process_order, payment.authorize, ...), database and "
                    "client calls. Find one in the trace explorer by service and operation."),
        14, 12))
    p.append(g.place(table(
        "Operations with errors (over the time range)",
        "topk(10, sum by (service_name, span_name, span_kind) ("
        'increase(traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"}[$__range])))',
        "errors", columns=("service_name", "span_name", "span_kind")), 24, 8))
    return dashboard("otel-lab-overview", "otel-lab / 1 Lab overview",
                     "The whole lab at a glance: traffic, errors and latency per service from "
                     "the traces, the order-service SLOs, the call graph and the slowest "
                     "operations.", p)


# 2 ───────────────────────────────────────────────────────────────────────────────────────
def service_detail():
    svc = 'job="$service"'
    g = Grid()
    p = []
    p.append(g.row("$service, from its own http.server.request.duration"))
    p.append(g.place(stat(
        "Requests/s",
        f"sum(rate(http_server_request_duration_seconds_count{{{svc}}}[$__rate_interval]))",
        unit="reqps", decimals=1), 6, 4))
    p.append(g.place(stat(
        "Error ratio (5xx)",
        f'(sum(rate(http_server_request_duration_seconds_count{{{svc}, http_response_status_code=~"5.."}}[$__rate_interval])) or vector(0))'
        f" / sum(rate(http_server_request_duration_seconds_count{{{svc}}}[$__rate_interval]))",
        unit="percentunit", decimals=2,
        thresholds=steps(("green", None), ("orange", 0.005), ("red", 0.05))), 6, 4))
    p.append(g.place(stat(
        "p95 latency",
        "histogram_quantile(0.95, sum by (le) ("
        f"rate(http_server_request_duration_seconds_bucket{{{svc}}}[$__rate_interval])))",
        unit="s", thresholds=steps(("green", None), ("red", 0.5))), 6, 4))
    p.append(g.place(stat(
        "Requests in flight",
        f"sum(http_server_active_requests{{{svc}}})",
        description="http.server.active_requests"), 6, 4))

    p.append(g.place(timeseries(
        "Request rate per route",
        [target(f"sum by (http_request_method, http_route) (rate(http_server_request_duration_seconds_count{{{svc}}}[$__rate_interval]))",
                "{{http_request_method}} {{http_route}}")],
        unit="reqps"), 12, 8))
    p.append(g.place(timeseries(
        "Error ratio per route (5xx)",
        [target(error_ratio(svc, "http_request_method, http_route",
                            'http_response_status_code=~"5.."'),
                "{{http_request_method}} {{http_route}}")],
        unit="percentunit"), 12, 8))
    p.append(g.place(timeseries(
        "Latency per route (p50 and p95)",
        [target("histogram_quantile(0.95, sum by (http_request_method, http_route, le) ("
                f"rate(http_server_request_duration_seconds_bucket{{{svc}}}[$__rate_interval])))",
                "p95 {{http_request_method}} {{http_route}}", ref="A"),
         target("histogram_quantile(0.5, sum by (http_request_method, http_route, le) ("
                f"rate(http_server_request_duration_seconds_bucket{{{svc}}}[$__rate_interval])))",
                "p50 {{http_request_method}} {{http_route}}", ref="B")],
        unit="s"), 12, 8))
    p.append(g.place(timeseries(
        "Responses by status code",
        [target(f"sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{{{svc}}}[$__rate_interval]))",
                "{{http_response_status_code}}")],
        unit="reqps", stack=True,
        description="4xx are the clients' mistakes (declined card 402, fraud rejection 403, "
                    "out of stock 409); 5xx are this service's failures."), 12, 8))

    p.append(g.row("From latency to the trace: exemplars (from the span metrics)"))
    p.append(g.place(timeseries(
        "Server span latency with exemplars (click a dot to open its trace)",
        [target("histogram_quantile(0.95, sum by (span_name, le) ("
                f'rate(traces_span_metrics_duration_milliseconds_bucket{{service_name="$service", {SERVER_SPANS}}}[$__rate_interval])))',
                "p95 {{span_name}}", exemplar=True)],
        unit="ms",
        description="The collector's spanmetrics connector keeps the trace id of sample spans "
                    "on each histogram bucket; Prometheus stores them when started with "
                    "--enable-feature=exemplar-storage, and Grafana links them to Jaeger. "
                    "The panels above, from the services' own SDK histograms, have no dots: "
                    "the Rust SDK (opentelemetry_sdk 0.33) records no exemplars."),
        24, 9))

    p.append(g.row("What $service waits for: its calls to other services"))
    p.append(g.place(timeseries(
        "Client-side p95 latency per dependency",
        [target("histogram_quantile(0.95, sum by (server_address, server_port, le) ("
                f"rate(http_client_request_duration_seconds_bucket{{{svc}}}[$__rate_interval])))",
                "{{server_address}}:{{server_port}}")],
        unit="s",
        description="http.client.request.duration as $service measures it: the callee's "
                    "own latency plus the network and queueing. Empty for a service that "
                    "calls nobody (inventory-service, payment-service)."), 12, 8))
    p.append(g.place(timeseries(
        "Client calls per dependency and outcome",
        [target("sum by (server_port, http_response_status_code, error_type) ("
                f"rate(http_client_request_duration_seconds_count{{{svc}}}[$__rate_interval]))",
                ":{{server_port}} {{http_response_status_code}} {{error_type}}")],
        unit="reqps",
        description="error_type is the status code for a 4xx/5xx answer, or timeout / "
                    "connect_error when there was none."), 12, 8))
    p.append(g.place(timeseries(
        "Operations inside $service (span metrics)",
        [target("sum by (span_name, span_kind) (rate(traces_span_metrics_calls_total{"
                'service_name="$service", span_kind!="SPAN_KIND_SERVER"}[$__rate_interval]))',
                "{{span_name}} ({{span_kind}})")],
        unit="ops",
        description="Business spans, database statements and outgoing calls."), 24, 8))

    p.append(g.row("Its database: db.client.operation.duration"))
    p.append(g.place(timeseries(
        "Statement p95 per operation and table",
        [target("histogram_quantile(0.95, sum by (db_operation_name, db_collection_name, le) ("
                f"rate(db_client_operation_duration_seconds_bucket{{{svc}}}[$__rate_interval])))",
                "{{db_operation_name}} {{db_collection_name}}")],
        unit="s",
        description="Each statement as the service times it (SQLite, so no network): the "
                    "slow_inventory_queries scenario shows here. Waiting for the one "
                    "connection is not in it: that is the 'wait for connection' span in a "
                    "trace. Empty for a service without a database (payment-service)."),
        12, 8))
    p.append(g.place(timeseries(
        "Statements per second by outcome",
        [target("sum by (db_operation_name, db_collection_name, error_type) ("
                f"rate(db_client_operation_duration_seconds_count{{{svc}}}[$__rate_interval]))",
                "{{db_operation_name}} {{db_collection_name}} {{error_type}}")],
        unit="ops",
        description="error_type is SQLite's result code (SQLITE_BUSY, SQLITE_CONSTRAINT, ...) "
                    "of a failed statement, empty for a successful one."), 12, 8))
    return dashboard(
        "otel-lab-service", "otel-lab / 2 Service detail",
        "RED per route for one service from its SDK metrics, its database statements, span-"
        "metric exemplars to jump to traces (the Rust SDK records none on its own metrics), "
        "and the latency of the services it depends on.", p,
        variables=[query_variable(
            "service", "service",
            "label_values(http_server_request_duration_seconds_count, job)", "order-service")])


# 3 ───────────────────────────────────────────────────────────────────────────────────────
def business():
    g = Grid()
    p = []
    p.append(g.row("Orders"))
    p.append(g.place(timeseries(
        "Checkouts per minute by outcome",
        [target("sum by (order_status) (rate(orders_created_total[$__rate_interval])) * 60",
                "{{order_status}}")],
        unit="short", stack=True,
        description="orders.created counts every checkout once. Stored orders: created "
                    "(paid), rejected (fraud check), payment_failed (declined or gateway "
                    "error). None stored: invalid (400), out_of_stock (409), failed (5xx: "
                    "inventory unavailable or the database failed)."), 12, 8))
    p.append(g.place(timeseries(
        "Checkouts per minute by customer tier",
        [target('sum by (customer_tier) (rate(orders_created_total{customer_tier!=""}[$__rate_interval])) * 60',
                "{{customer_tier}}")],
        unit="short", stack=True,
        description="customer.tier travels as baggage from order-service to every service. "
                    "A request refused before it named the customer has no tier and is left "
                    "out here."),
        12, 8))
    p.append(g.place(timeseries(
        "Order value (USD)",
        [target('histogram_quantile(0.5, sum by (le) (rate(orders_value_bucket{order_status="created"}[$__rate_interval]))) / 100',
                "median", ref="A"),
         target('histogram_quantile(0.95, sum by (le) (rate(orders_value_bucket{order_status="created"}[$__rate_interval]))) / 100',
                "p95", ref="B"),
         target('sum(rate(orders_value_sum{order_status="created"}[$__rate_interval])) / sum(rate(orders_value_count{order_status="created"}[$__rate_interval])) / 100',
                "mean", ref="C")],
        unit="currencyUSD",
        description="orders.value is recorded in cents; divided by 100 here."), 12, 8))
    p.append(g.place(timeseries(
        "Revenue per minute (USD, created orders)",
        [target('sum(rate(orders_value_sum{order_status="created"}[$__rate_interval])) * 60 / 100',
                "revenue")],
        unit="currencyUSD"), 12, 8))

    p.append(g.row("Payments"))
    p.append(g.place(stat(
        "Payment decline rate",
        "(sum(rate(payments_declined_total[$__rate_interval])) or vector(0))"
        " / sum(rate(payments_amount_count[$__rate_interval]))",
        unit="percentunit", decimals=1,
        thresholds=steps(("green", None), ("orange", 0.1), ("red", 0.3)),
        description="payments.declined over every payment attempt (payments.amount counts "
                    "authorized, declined and timeout)."), 4, 8))
    p.append(g.place(stat(
        "Gateway timeout rate",
        "(sum(rate(payments_timed_out_total[$__rate_interval])) or vector(0))"
        " / sum(rate(payments_amount_count[$__rate_interval]))",
        unit="percentunit", decimals=1,
        thresholds=steps(("green", None), ("orange", 0.01), ("red", 0.05)),
        description="payments.timed_out over every payment attempt: the card gateway did not "
                    "answer in time (payment-service answers 504, order-service 502)."), 4, 8))
    p.append(g.place(timeseries(
        "Payments per minute by outcome",
        [target("sum by (payment_outcome) (rate(payments_amount_count[$__rate_interval])) * 60",
                "{{payment_outcome}}")],
        stack=True,
        description="authorized and declined are the card gateway's answers; timeout is the "
                    "gateway not answering (payment-service answers 504, order-service 502). "
                    "The counters payments.authorized, .declined and .timed_out say the same, "
                    "one per outcome."),
        8, 8))
    p.append(g.place(timeseries(
        "Amount per minute by outcome (USD)",
        [target("sum by (payment_outcome) (rate(payments_amount_sum[$__rate_interval])) * 60 / 100",
                "{{payment_outcome}}")],
        unit="currencyUSD"), 8, 8))

    p.append(g.row("Stock and compensations"))
    p.append(g.place(bargauge(
        "Stock level per sku",
        [target("sort(sum by (inventory_sku) (inventory_stock_level))", "{{inventory_sku}}",
                instant=True)],
        thresholds=steps(("red", None), ("orange", 10), ("green", 50)),
        description="inventory.stock_level, observed by inventory-service."), 8, 12))
    p.append(g.place(timeseries(
        "Stock level over time",
        [target("sum by (inventory_sku) (inventory_stock_level)", "{{inventory_sku}}")]),
        8, 12))
    p.append(g.place(timeseries(
        "Compensations per minute",
        [target('sum(rate(http_server_request_duration_seconds_count{job="inventory-service", http_route="/inventory/release"}[$__rate_interval])) * 60',
                "stock released (inventory-service)", ref="A"),
         target('sum by (order_status) (rate(orders_created_total{order_status=~"rejected|payment_failed"}[$__rate_interval])) * 60',
                "orders not shipped: {{order_status}}", ref="B")],
        description="When the fraud check rejects an order or the payment fails, "
                    "order-service gives the reserved stock back (POST /inventory/release): "
                    "the saga's compensation. The two lines should match (checkouts refused "
                    "before stock was reserved have nothing to give back)."), 8, 12))
    return dashboard("otel-lab-business", "otel-lab / 3 Business",
                     "What the shop's owner asks: orders, money, declines, stock, and the "
                     "compensations that undo failed checkouts.", p)


# 4 ───────────────────────────────────────────────────────────────────────────────────────
def lambda_dashboard():
    g = Grid()
    p = []
    calls = f"traces_span_metrics_calls_total{{{LAMBDA_SPANS}}}"
    p.append(g.row("fraud-check, from its invocation spans (spanmetrics, faas.coldstart)"))
    p.append(g.place(stat(
        "Invocations/s", f"sum(rate({calls}[$__rate_interval]))", unit="reqps", decimals=2),
        6, 5))
    p.append(g.place(stat(
        "Cold-start ratio (since the gateway started)",
        f'sum(traces_span_metrics_calls_total{{{LAMBDA_SPANS}, faas_coldstart="true"}}) / sum({calls})',
        unit="percentunit", decimals=1,
        description="Invocations that started a new execution environment. Counted from the "
                    "cumulative span metrics: each cold start is one step, which rate() over "
                    "a short window would miss."), 6, 5))
    p.append(g.place(stat(
        "Cold starts (since the gateway started)",
        f'sum(traces_span_metrics_calls_total{{{LAMBDA_SPANS}, faas_coldstart="true"}})',
        description="The emulator stops an idle function after 60 s; the next call is "
                    "cold again."), 6, 5))
    p.append(g.place(stat(
        "Error ratio",
        f'(sum(rate(traces_span_metrics_calls_total{{{LAMBDA_SPANS}, status_code="STATUS_CODE_ERROR"}}[$__rate_interval])) or vector(0))'
        f" / sum(rate({calls}[$__rate_interval]))",
        unit="percentunit", decimals=2,
        thresholds=steps(("green", None), ("red", 0.01))), 6, 5))

    p.append(g.place(timeseries(
        "Invocations per second, cold and warm",
        [target(f"sum by (faas_coldstart) (rate({calls}[$__rate_interval]))",
                "coldstart={{faas_coldstart}}")],
        unit="reqps", stack=True), 12, 8))
    p.append(g.place(timeseries(
        "Cold starts (cumulative)",
        [target(f'sum(traces_span_metrics_calls_total{{{LAMBDA_SPANS}, faas_coldstart="true"}})',
                "cold starts")],
        description="One step per new execution environment."), 12, 8))
    p.append(g.place(bargauge(
        "Mean duration, cold vs warm (since the gateway started)",
        [target(f"sum by (faas_coldstart) (traces_span_metrics_duration_milliseconds_sum{{{LAMBDA_SPANS}}})"
                f" / sum by (faas_coldstart) (traces_span_metrics_duration_milliseconds_count{{{LAMBDA_SPANS}}})",
                "coldstart={{faas_coldstart}}", instant=True)],
        unit="ms"), 8, 8))
    p.append(g.place(timeseries(
        "p95 duration, cold vs warm",
        [target("histogram_quantile(0.95, sum by (faas_coldstart, le) ("
                f"rate(traces_span_metrics_duration_milliseconds_bucket{{{LAMBDA_SPANS}}}[$__rate_interval])))",
                "coldstart={{faas_coldstart}}", exemplar=True)],
        unit="ms",
        description="The cold line appears only around a cold start."), 16, 8))
    p.append(g.row("Seen from the caller"))
    p.append(g.place(timeseries(
        "order-service → fraud-check p95 (client side)",
        [target('histogram_quantile(0.95, sum by (le) (rate(http_client_request_duration_seconds_bucket{job="order-service", server_port="9000"}[$__rate_interval])))',
                "p95")],
        unit="s",
        description="The function URL call as order-service times it: includes the "
                    "emulator's queueing and a cold start's process launch, which the "
                    "invocation span does not see."), 12, 8))
    p.append(g.place(timeseries(
        "Fraud scoring spans by status",
        [target('sum by (status_code) (rate(traces_span_metrics_calls_total{service_name="fraud-check", span_name="fraud_check.score"}[$__rate_interval]))',
                "{{status_code}}")],
        unit="ops"), 12, 8))
    p.append(g.row("fulfilment and its queue (orders → fulfilment, dead letters in orders-dlq)"))
    queue = 'job="orders-queue"'
    p.append(g.place(stat(
        "Oldest waiting order",
        f'max(queue_oldest_message_age_seconds{{{queue}, messaging_destination_name="orders"}})',
        unit="s", decimals=1,
        thresholds=steps(("green", None), ("orange", 30), ("red", 60)),
        description="Age of the oldest message in the orders queue: how late fulfilment "
                    "runs. The OrdersQueueBacklog alert fires above 60 s for 2 minutes."),
        6, 5))
    p.append(g.place(stat(
        "Waiting / in flight",
        f'sum(queue_messages_visible{{{queue}, messaging_destination_name="orders"}})'
        f' + sum(queue_messages_in_flight{{{queue}, messaging_destination_name="orders"}})',
        description="Messages not yet fulfilled: waiting for the poller, or handed to the "
                    "function and not yet deleted."), 6, 5))
    p.append(g.place(stat(
        "Dead letters (in orders-dlq)",
        f'sum(queue_messages_visible{{{queue}, messaging_destination_name="orders-dlq"}})',
        thresholds=steps(("green", None), ("red", 1)),
        description="Order events that failed every attempt; `lab queue` lists them (and --redrive retries them)."),
        6, 5))
    p.append(g.place(stat(
        "Failed attempts/s",
        f'sum(rate(queue_messages_failed_total{{{queue}}}[$__rate_interval]))',
        unit="ops", decimals=2,
        description="Messages the function reported in batchItemFailures (or whose whole "
                    "batch failed): they come back after the visibility timeout."), 6, 5))
    p.append(g.place(timeseries(
        "Messages per second: processed, failed, dead-lettered",
        [target(f'sum(rate(queue_messages_processed_total{{{queue}}}[$__rate_interval]))', "processed", "A"),
         target(f'sum(rate(queue_messages_failed_total{{{queue}}}[$__rate_interval]))', "failed", "B"),
         target(f'sum(rate(queue_messages_dead_lettered_total{{{queue}}}[$__rate_interval]))', "dead-lettered", "C")],
        unit="ops"), 12, 8))
    p.append(g.place(timeseries(
        "Queue depth and the oldest message's age",
        [target(f'sum by (messaging_destination_name) (queue_messages_visible{{{queue}}})',
                "{{messaging_destination_name}} waiting", "A"),
         target(f'sum by (messaging_destination_name) (queue_messages_in_flight{{{queue}}})',
                "{{messaging_destination_name}} in flight", "B")],
        description="A queue that keeps up is empty between batches; a growing line is a "
                    "consumer that fails or cannot keep up."), 12, 8))
    return dashboard("otel-lab-lambda", "otel-lab / 4 Lambda (fraud-check, fulfilment)",
                     "The fraud-check function: invocations, cold starts and how much they "
                     "cost, from the spans it flushes on every invocation; the fulfilment "
                     "function and the queue that triggers it.", p)


# 5 ───────────────────────────────────────────────────────────────────────────────────────
SIGNALS = [("spans", "spans"), ("metric_points", "metric points"), ("log_records", "log records")]


def per_signal(title, metric_pattern, by, legend, unit="short", description=""):
    targets = [target(f"sum by ({by}) (rate({metric_pattern.format(s)}[$__rate_interval]))",
                      legend.format(label), ref=chr(ord("A") + i))
               for i, (s, label) in enumerate(SIGNALS)]
    return timeseries(title, targets, unit=unit, description=description)


def collector_health():
    g = Grid()
    p = []
    p.append(g.row("Is every collector there?"))
    p.append(g.place(stat(
        "Scrape targets up", 'sum(up{job=~"otel-collector|otel-gateway-exporter"})',
        description="agent, gateway, sidecar own metrics, and the gateway's exporter: 4."),
        6, 4))
    p.append(g.place(bargauge(
        "Uptime",
        [target("otelcol_process_uptime_seconds_total", "{{collector}}", instant=True)],
        unit="s"), 18, 4))

    p.append(g.row("Data in: receivers"))
    p.append(g.place(per_signal(
        "Accepted per second", "otelcol_receiver_accepted_{}_total", "collector",
        "{{{{collector}}}} {}", description="Items the OTLP receivers pushed into the pipeline."),
        12, 8))
    p.append(g.place(per_signal(
        "Refused per second", "otelcol_receiver_refused_{}_total", "collector",
        "{{{{collector}}}} {}",
        description="Items the receivers answered with an error (memory limiter, bad data). "
                    "Should stay 0."), 12, 8))

    p.append(g.row("Data out: exporters"))
    p.append(g.place(per_signal(
        "Sent per second", "otelcol_exporter_sent_{}_total", "collector, exporter",
        "{{{{collector}}}} {{{{exporter}}}} {}",
        description="The agent and the sidecar send to the gateway (otlp/gateway); the "
                    "gateway's prometheus exporter takes the metrics."), 8, 8))
    p.append(g.place(per_signal(
        "Send failures per second", "otelcol_exporter_send_failed_{}_total",
        "collector, exporter", "{{{{collector}}}} {{{{exporter}}}} {}",
        description="Failed attempts; queued data is retried. Stop the gateway and watch "
                    "the agent's line rise."), 8, 8))
    p.append(g.place(per_signal(
        "Refused per second (queue full)", "otelcol_exporter_enqueue_failed_{}_total",
        "collector, exporter", "{{{{collector}}}} {{{{exporter}}}} {}",
        description="Items that did not fit in the sending queue, refused upstream with a "
                    "retryable error; lost only where a batch processor had already "
                    "acknowledged them (without wait_for_result)."), 8, 8))
    p.append(g.place(timeseries(
        "Queue size vs capacity",
        [target("sum by (collector, exporter, data_type) (otelcol_exporter_queue_size)",
                "size {{collector}} {{exporter}} {{data_type}}", ref="A"),
         target("sum by (collector, exporter, data_type) (otelcol_exporter_queue_capacity > 0)",
                "capacity {{collector}} {{exporter}} {{data_type}}", ref="B")],
        description="What waits to be sent, in the queue's sizer unit (batches unless "
                    "sending_queue.sizer says items or bytes). Exporters without a queue are "
                    "left out of the capacity lines."), 12, 8))
    p.append(g.place(timeseries(
        "Queue fill",
        [target("max by (collector, exporter, data_type) ("
                "otelcol_exporter_queue_size / (otelcol_exporter_queue_capacity > 0))",
                "{{collector}} {{exporter}} {{data_type}}")],
        unit="percentunit",
        thresholds=steps(("green", None), ("red", 0.8)),
        description="OtelCollectorQueueNearlyFull fires above 80% for 5 minutes."), 12, 8))

    p.append(g.row("Inside: batches and resources"))
    p.append(g.place(timeseries(
        "Batch send size (items per batch)",
        [target("histogram_quantile(0.5, sum by (collector, le) (rate(otelcol_processor_batch_batch_send_size_bucket[$__rate_interval])))",
                "p50 {{collector}}", ref="A"),
         target("histogram_quantile(0.95, sum by (collector, le) (rate(otelcol_processor_batch_batch_send_size_bucket[$__rate_interval])))",
                "p95 {{collector}}", ref="B")],
        description="Small batches sent on the timeout mean light traffic; batches at "
                    "send_batch_size mean the size trigger is doing the work."), 8, 8))
    p.append(g.place(timeseries(
        "Batches sent per second, by trigger",
        [target("sum by (collector) (rate(otelcol_processor_batch_timeout_trigger_send_total[$__rate_interval]))",
                "{{collector}} timeout", ref="A"),
         target("sum by (collector) (rate(otelcol_processor_batch_batch_size_trigger_send_total[$__rate_interval]))",
                "{{collector}} size", ref="B")],
        unit="ops"), 8, 8))
    p.append(g.place(timeseries(
        "Memory (RSS)",
        [target("otelcol_process_memory_rss_bytes", "{{collector}}")],
        unit="bytes",
        description="The memory_limiter refuses data above its limit_mib (gateway 512, "
                    "agent 256, sidecar 128)."), 8, 8))
    p.append(g.place(timeseries(
        "CPU",
        [target("rate(otelcol_process_cpu_seconds_total[$__rate_interval])", "{{collector}}")],
        unit="percentunit"), 24, 6))
    return dashboard("otel-lab-collectors", "otel-lab / 5 Collector health",
                     "The telemetry pipeline itself: agent, ECS sidecar and gateway — what "
                     "comes in, what goes out, what waits and what is lost.", p)


DASHBOARDS = {
    "1-lab-overview.json": lab_overview,
    "2-service-detail.json": service_detail,
    "3-business.json": business,
    "4-lambda.json": lambda_dashboard,
    "5-collector-health.json": collector_health,
}


def render(build):
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if a dashboard JSON differs from what this script writes")
    args = parser.parse_args()
    stale = []
    for name, build in DASHBOARDS.items():
        path = DASHBOARDS_DIR / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("stale dashboards (run `python3 grafana/build_dashboards.py`):\n  "
              + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
