#!/usr/bin/env python3
"""`make metrics-e2e`: every query of every Grafana dashboard returns data from a real lab.

Starts the lab (`lab up`, every process but its own Prometheus and Grafana) in a temporary
state directory, then a real Prometheus with prometheus/prometheus-local.yml (on a free
127.0.0.1 port, exemplar storage on); drives bounded traffic with the `traffic` binary
(`--scenario failures` and `--scenario mixed` together, so errors, declines, timeouts and
compensations happen); waits for the last spans and metrics to be scraped; then runs every
dashboard query as Grafana would (variables filled in, range queries over the run) through
Prometheus's HTTP API and checks that:

- each returns at least one series with a real (not NaN) value, and every metric it names
  exists with every label it matches on (so `x or vector(0)` cannot hide a misspelt x);
- each query with exemplars turned on has exemplars (trace ids) to link to;
- the numbers tell what the traffic did (STORY: errors, declines, compensations, a cold
  start, the call graph);
- every recording and alerting rule evaluates without error.

Prints a table of panel → series, then stops everything it started. Needs the release
binaries (`cargo build --release --workspace --bins`) and `prometheus` on PATH (Debian
package `prometheus`); without prometheus it fails, saying how to install it. The lab's
fixed ports (DESIGN.md) must be free. Takes about a minute and a half.
"""

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import dashboard_queries as dq

REPO = dq.REPO
# The lab's processes this test needs; `lab up` would also start prometheus and grafana when
# installed, but the test runs its own Prometheus (exemplar storage, a free port).
LAB_PROCESSES = ["collector-gateway", "collector-agent", "collector-sidecar",
                 "inventory-service", "payment-service", "fraud-check", "fulfilment",
                 "order-service"]
# Up when these answer (the lab prints its table only once all are healthy).
LAB_ENDPOINTS = ["http://127.0.0.1:8080/healthz", "http://127.0.0.1:8889/metrics",
                 "http://127.0.0.1:8888/metrics", "http://127.0.0.1:8887/metrics",
                 "http://127.0.0.1:8886/metrics"]
TRAFFIC = [["--scenario", "failures", "--rate", "6", "--duration", "40s", "--seed", "7"],
           ["--scenario", "mixed", "--rate", "8", "--duration", "40s", "--seed", "11"]]
# Series that show the whole path worked: SDK metrics via agent and sidecar, span metrics
# of the Lambda with its cold start, the collectors' own metrics.
SIGNS_OF_LIFE = [
    'orders_created_total{job="order-service"}',
    'payments_amount_count{job="payment-service"}',
    'traces_span_metrics_calls_total{service_name="fraud-check", faas_coldstart="true"}',
    'otelcol_receiver_accepted_spans_total{collector="agent"}',
]
# What the panels must say after this traffic, beyond "there is data": the story a learner
# reads. (PromQL at the end of the run, variables as in the dashboards.)
STORY = [
    ("order-service answered some 5xx (gateway timeouts)",
     'sum(increase(http_server_request_duration_seconds_count{job="order-service", http_response_status_code=~"5.."}[5m])) > 0'),
    ("the availability SLO sees those errors",
     'job:slo_errors_per_request:ratio_rate1h{job="order-service"} > 0'),
    ("some payments were declined",
     "sum(increase(payments_declined_total[5m])) > 0"),
    ("failed checkouts released their stock (compensation)",
     'sum(increase(http_server_request_duration_seconds_count{job="inventory-service", http_route="/inventory/release"}[5m])) > 0'),
    ("the Lambda had a cold start, tagged by faas.coldstart",
     'sum(traces_span_metrics_calls_total{service_name="fraud-check", faas_coldstart="true"}) >= 1'),
    ("the service graph has order-service -> payment-service",
     'sum(rate(http_client_request_duration_seconds_count{job="order-service", server_port="8081"}[1m])) > 0'),
    ("placed orders were fulfilled through the queue",
     'sum(increase(queue_messages_processed_total{job="orders-queue"}[5m])) > 0'),
    ("the agent forwarded spans to the gateway",
     'sum(increase(otelcol_exporter_sent_spans_total{collector="agent"}[5m])) > 0'),
]
# Long enough for the services' 5 s metric export, the gateway's 5 s span metrics flush and
# a 5 s scrape to all happen after the last request.
SETTLE_SECONDS = 16
STARTUP_TIMEOUT = 90
STOP_TIMEOUT = 45


class Failure(Exception):
    pass


def log(message):
    print(f"[metrics-e2e] {message}", flush=True)


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def answers(url):
    try:
        http_get(url)
        return True
    except (urllib.error.URLError, OSError):
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The processes this test started, each in its own process group, stopped in reverse
    order."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def start(self, name, command, env=None):
        out = open(self.workdir / f"{name}.log", "wb")
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.started.append((name, process))
        return process

    def tail(self, name, lines=25):
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {name} | {line}" for line in text)

    def stop_all(self):
        for name, process in reversed(self.started):
            if process.poll() is not None:
                continue
            # lab up stops its children in order on SIGINT, as on Ctrl-C.
            process.send_signal(signal.SIGINT if name == "lab" else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop within {STOP_TIMEOUT}s: killing its process group")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class Prometheus:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(http_get(url, timeout=10))
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise Failure(f"{path} {params.get('query', '')}: {body.get('errorType')}: "
                          f"{body.get('error')}")
        return body["data"]

    def has(self, selector):
        return bool(self.api("query", query=selector)["result"])


def finite_series(data):
    """How many series of a query result have at least one real value, and how many in all."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return (0 if math.isnan(float(result[1])) else 1), 1
    if kind == "vector":
        values = [[s["value"]] for s in result]
    else:
        values = [s["values"] for s in result]
    finite = sum(1 for points in values if any(not math.isnan(float(v)) for _, v in points))
    return finite, len(values)


def wait_until(what, check, timeout, processes=(), interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes:
            if process.poll() is not None:
                raise Failure(f"{name} exited ({process.returncode}) while waiting for {what}")
        if check():
            return
        time.sleep(interval)
    raise Failure(f"timed out after {timeout}s waiting for {what}")


def run(args):
    bin_dir = Path(args.bin_dir).resolve()
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        raise Failure("prometheus is not on PATH (Debian: apt-get install prometheus)")
    missing = [b for b in ("lab", "traffic") if not (bin_dir / b).is_file()]
    if missing:
        raise Failure(f"{', '.join(missing)} not built in {bin_dir} "
                      "(cargo build --release --workspace --bins)")

    workdir = Path(tempfile.mkdtemp(prefix="otel-lab-metrics-e2e-"))
    processes = Processes(workdir)
    try:
        return exercise(args, bin_dir, prometheus_bin, workdir, processes)
    except Failure:
        for name, _ in processes.started:
            tail = processes.tail(name)
            if tail:
                print(f"  last lines of {name}:\n{tail}", file=sys.stderr)
        raise
    finally:
        processes.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def exercise(args, bin_dir, prometheus_bin, workdir, processes):
    started = time.monotonic()
    lab = processes.start("lab", [str(bin_dir / "lab"), "up", "--repo", str(REPO),
                                  "--state-dir", str(workdir / "state"),
                                  "--bin-dir", str(bin_dir), "--only", *LAB_PROCESSES],
                          env={**os.environ, "NO_COLOR": "1"})
    wait_until("the lab to be up", lambda: all(answers(u) for u in LAB_ENDPOINTS),
               STARTUP_TIMEOUT, [("lab", lab)])
    log(f"lab up in {time.monotonic() - started:.0f}s")

    port = free_port()
    prometheus = processes.start("prometheus", [
        prometheus_bin,
        f"--config.file={REPO / 'prometheus' / 'prometheus-local.yml'}",
        f"--storage.tsdb.path={workdir / 'prometheus'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
    ])
    base = f"http://127.0.0.1:{port}"
    wait_until("Prometheus to be ready", lambda: answers(f"{base}/-/ready"), 30,
               [("prometheus", prometheus), ("lab", lab)])
    prom = Prometheus(base)

    traffic_start = time.time()
    log("traffic: " + " and ".join(" ".join(t) for t in TRAFFIC))
    traffic = [processes.start(f"traffic-{i}", [str(bin_dir / "traffic"), *t])
               for i, t in enumerate(TRAFFIC)]
    for i, process in enumerate(traffic):
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise Failure(f"traffic {' '.join(TRAFFIC[i])} did not finish in 90s") from None
        # Failed requests are what the failures scenario is for and still exit 0; a
        # non-zero exit means traffic itself could not run.
        if code != 0:
            raise Failure(f"traffic {' '.join(TRAFFIC[i])} exited {code}")
    traffic_end = time.time()

    wait_until("the pipeline's metrics in Prometheus",
               lambda: all(prom.has(s) for s in SIGNS_OF_LIFE), 40,
               [("lab", lab), ("prometheus", prometheus)])
    remaining = traffic_end + SETTLE_SECONDS - time.time()
    if remaining > 0:
        time.sleep(remaining)

    failures = []
    rows = []
    matched = {}  # selector → whether it matched series during the run
    end = time.time()
    begin = traffic_start - 10
    for q in dq.queries():
        try:
            if q.instant:
                data = prom.api("query", query=q.promql, time=f"{end:.3f}")
            else:
                data = prom.api("query_range", query=q.promql, start=f"{begin:.3f}",
                                end=f"{end:.3f}", step="5")
        except Failure as error:
            failures.append(f"{q.label}: {error}")
            rows.append((q, 0, 0, None))
            continue
        finite, total = finite_series(data)
        for selector in dq.selectors(q.promql):
            for check in selector.checks():
                if check not in matched:
                    window = f"{int(end - begin) + 1}s"
                    matched[check] = bool(prom.api(
                        "query", query=f"count(last_over_time({check}[{window}]))",
                        time=f"{end:.3f}")["result"])
                if not matched[check]:
                    failures.append(f"{q.label}: {check} matches no series (a misspelt "
                                    "metric or label, hidden by `or`?)")
        exemplars = None
        if q.exemplar:
            found = prom.api("query_exemplars", query=q.promql, start=f"{begin:.3f}",
                             end=f"{end:.3f}")
            exemplars = sum(len(s.get("exemplars", [])) for s in found)
            if exemplars == 0:
                failures.append(f"{q.label}: exemplars are on but Prometheus has none")
        if finite == 0:
            failures.append(f"{q.label}: no data ({total} series, none with a value)\n"
                            f"      {q.promql}")
        rows.append((q, finite, total, exemplars))

    print_table(rows)
    for what, expr in STORY:
        if prom.api("query", query=expr, time=f"{end:.3f}")["result"]:
            log(f"ok: {what}")
        else:
            failures.append(f"the dashboards do not show that {what}: {expr} is empty")
    for group in prom.api("rules")["groups"]:
        for rule in group["rules"]:
            if rule.get("health") != "ok":
                failures.append(f"rule {group['name']}/{rule['name']}: {rule.get('health')} "
                                f"{rule.get('lastError', '')}")
    if failures:
        raise Failure(f"{len(failures)} problem(s):\n  " + "\n  ".join(failures))
    log(f"every dashboard query returned data ({len(rows)} queries, "
        f"{time.monotonic() - started:.0f}s)")
    return 0


def print_table(rows):
    width = max(len(f"{q.dashboard} / {q.panel}") for q, *_ in rows)
    print(f"\n{'dashboard / panel':<{width}}  ref  series  exemplars")
    print(f"{'-' * width}  ---  ------  ---------")
    for q, finite, total, exemplars in rows:
        series = f"{finite}" if finite == total else f"{finite}/{total}"
        ex = "" if exemplars is None else str(exemplars)
        print(f"{q.dashboard + ' / ' + q.panel:<{width}}  {q.ref:<3}  {series:>6}  {ex:>9}")
    print("(series: with a value; a/b when b - a series were all NaN, e.g. a quantile with "
          "no observation)\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_bin = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release"
    parser.add_argument("--bin-dir", default=str(default_bin),
                        help="where lab, traffic and the lab's binaries are [%(default)s]")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (logs, Prometheus data)")
    args = parser.parse_args()
    try:
        return run(args)
    except Failure as error:
        print(f"[metrics-e2e] FAILED: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
