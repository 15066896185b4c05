"""The metrics agreed in deploy/METRICS.md are the only ones the Grafana dashboard, the alerts and
the runbook's queries name (PromQL's metric names read by ``metric_names``)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.deploy_files import (
    DASHBOARD,
    RUNBOOK,
    agreed_metrics,
    alert_rules,
    dashboard_queries,
    metric_names,
)

ALERT_RULES = alert_rules()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, route) (rate(a_bucket{status=~"5.."}[5m]))', {"a_bucket"}),
        ("histogram_quantile(0.95, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ('absent(up{job="worker"} == 1) or c > 1e3 offset 5m', {"up", "c"}),
        ('max(x) * 2 + max(y{state="half_open"})', {"x", "y"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr, names):
    assert metric_names(expr) == names


def test_every_dashboard_query_names_only_agreed_metrics():
    allowed = agreed_metrics().series_names()
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))

    unknown = {(title, name) for title, expr in queries for name in metric_names(expr) - allowed}
    assert queries
    assert not unknown, f"(panel, metric) not in deploy/METRICS.md: {sorted(unknown)}"


def test_every_alert_names_only_agreed_metrics():
    allowed = agreed_metrics().series_names()

    unknown = {
        (rule["alert"], name)
        for rule in ALERT_RULES
        for name in metric_names(rule["expr"]) - allowed
    }
    assert not unknown, f"(alert, metric) not in deploy/METRICS.md: {sorted(unknown)}"


def test_the_runbook_answers_every_figure_of_the_old_metrics_endpoint_with_agreed_metrics():
    allowed = agreed_metrics().series_names()
    section = RUNBOOK.read_text().split("## The original metrics endpoint", 1)[1]
    rows = {
        line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")
    }
    figures = {"job counts by status", "success rate", "average processing time"}
    figures |= {"overdue jobs", "recent failures", "queue health"}

    assert figures <= set(rows)
    for figure in figures:
        queries = re.findall(r"`([^`]*\([^`]*)`", rows[figure])
        assert queries, figure
        for query in queries:
            assert metric_names(query) <= allowed, (figure, query)
