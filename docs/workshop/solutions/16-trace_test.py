#!/usr/bin/env python3
"""Module 16's reference solution: the starter's trace-based test with its assertions.

A trace-based regression test of the checkout, run against the lab.

It places one order, fetches the order's trace from the trace explorer (the Jaeger API on
:16686), and asserts on the trace's spans: what a unit test cannot see — which services took
part, how the calls nest, how many queries ran. Run it with the lab up:

    python3 workshop/trace_test.py

Exit status 0 when every assertion holds; an AssertionError (exit 1) names the one that did not.
"""
import json
import time
import urllib.error
import urllib.request

ORDER = {
    "customer_id": "c-42",
    "items": [{"sku": "KB-001", "quantity": 1}, {"sku": "MS-002", "quantity": 1}],
    "payment": {"card_token": "tok_visa"},
}
EXPLORER = "http://127.0.0.1:16686"


def place_order():
    """POST /orders; the order as order-service answers it (with its trace_id)."""
    request = urllib.request.Request(
        "http://127.0.0.1:8080/orders",
        data=json.dumps(ORDER).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def fetch_trace(trace_id):
    """The trace as the explorer has it once its spans have arrived: spans reach it through
    the collectors' batches, so wait for the first, then for the batches to pass."""
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{EXPLORER}/api/traces/{trace_id}", timeout=10) as r:
                if json.load(r)["data"]:
                    break
        except urllib.error.HTTPError:
            pass  # 404 until the first span arrives
        time.sleep(0.5)
    time.sleep(8)
    with urllib.request.urlopen(f"{EXPLORER}/api/traces/{trace_id}", timeout=10) as r:
        return json.load(r)["data"][0]


def service(trace, span):
    return trace["processes"][span["processID"]]["serviceName"]


def spans(trace, service_name=None, name=None):
    """The trace's spans, of one service and/or with one name."""
    return [
        s
        for s in trace["spans"]
        if (service_name is None or service(trace, s) == service_name)
        and (name is None or s["operationName"] == name)
    ]


def tag(span, key):
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


def main():
    order = place_order()
    assert order["status"] == "created", order
    trace = fetch_trace(order["trace_id"])

    # One checkout is one trace: every workload's server span is in it...
    servers = {service(trace, s) for s in trace["spans"] if tag(s, "span.kind") == "server"}
    for workload in ["order-service", "inventory-service", "fraud-check", "payment-service"]:
        assert workload in servers, f"no {workload} server span in the checkout's trace"
    # ... under the span that called it (the context went along on every hop).
    ids = {s["spanID"] for s in trace["spans"]}
    for s in trace["spans"]:
        if tag(s, "span.kind") == "server" and s["operationName"] != "POST /orders":
            parents = [r["spanID"] for r in s["references"] if r["refType"] == "CHILD_OF"]
            assert parents and parents[0] in ids, f"{s['operationName']} is not under its caller"
    # The reservation reads its products in one statement, whatever the number of lines.
    selects = spans(trace, "inventory-service", "SELECT products")
    assert len(selects) == 1, f"{len(selects)} SELECT products for {len(ORDER['items'])} lines"
    # The checkout answered 201 and said so on its span.
    root = spans(trace, "order-service", "POST /orders")[0]
    assert tag(root, "http.response.status_code") == 201, root["tags"]

    print(f"ok: trace {order['trace_id']} has {len(trace['spans'])} spans")


if __name__ == "__main__":
    main()
