"""Unit tests of dashboard_queries (run by `make metrics-lint`)."""

import unittest

import dashboard_queries as dq


class SubstituteTest(unittest.TestCase):
    def test_grafana_variables_are_filled_and_capture_groups_kept(self):
        values = {"service": "order-service", "__rate_interval": "20s"}
        expr = 'label_replace(rate(x{job="$service"}[$__rate_interval]), "t", "$1", "j", "(.*)")'
        self.assertEqual(
            dq.substitute(expr, values),
            'label_replace(rate(x{job="order-service"}[20s]), "t", "$1", "j", "(.*)")')

    def test_braced_form_is_filled_too(self):
        self.assertEqual(dq.substitute("x[${__range}]", {"__range": "15m"}), "x[15m]")


class SelectorsTest(unittest.TestCase):
    def names(self, promql):
        return [(s.metric, s.labels) for s in dq.selectors(promql)]

    def test_aggregation_labels_and_functions_are_not_metrics(self):
        self.assertEqual(
            self.names('histogram_quantile(0.95, sum by (job, le) '
                       '(rate(http_server_request_duration_seconds_bucket{job="a"}[5m])))'),
            [("http_server_request_duration_seconds_bucket", ("job",))])

    def test_both_sides_of_or_are_found(self):
        self.assertEqual(
            self.names('(sum(rate(payments_declined_total[1m])) or vector(0)) '
                       '/ sum(rate(payments_amount_count{payment_outcome!="x", b=~"y"}[1m]))'),
            [("payments_declined_total", ()),
             ("payments_amount_count", ("payment_outcome", "b"))])

    def test_strings_and_on_lists_are_skipped(self):
        self.assertEqual(
            self.names('label_join(up, "id", " -> ", "source", "target") unless on (target) vector(1)'),
            [("up", ())])

    def test_checks_ask_for_the_metric_and_each_label(self):
        selector = dq.Selector("m", ("a", "b"))
        self.assertEqual(list(selector.checks()), ["m", 'm{a!=""}', 'm{b!=""}'])


class DashboardsTest(unittest.TestCase):
    def test_every_query_is_found_with_its_variables_filled(self):
        queries = dq.queries()
        self.assertGreater(len(queries), 50)
        for q in queries:
            self.assertNotIn("$service", q.promql, q.label)
            self.assertNotIn("$__rate_interval", q.promql, q.label)


if __name__ == "__main__":
    unittest.main()
