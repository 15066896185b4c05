"""deploy/grafana/: the dashboard shows what the issue asks for, in valid PromQL (checked by
promtool), and Grafana provisions it with the Prometheus datasource docker-compose runs."""

from __future__ import annotations

import json

import yaml

from tests.support.deploy_files import (
    DASHBOARD,
    REPO,
    compose_services,
    dashboard_queries,
    metric_names,
)
from tests.support.processes import run

SERVICES = compose_services()


def test_the_dashboard_shows_what_the_issue_asks_for():
    used = set().union(
        *(metric_names(e) for _, e in dashboard_queries(json.loads(DASHBOARD.read_text())))
    )

    assert {
        "tribe_provider_calls_total",  # sends/s by outcome, transient errors
        "tribe_http_requests_total",  # API requests/s, 5xx
        "tribe_http_request_duration_seconds_bucket",  # API p50/p95/p99 by route
        "tribe_provider_call_duration_seconds_bucket",  # provider call p95
        "tribe_queue_messages",  # waiting/delayed/dead per queue
        "tribe_jobs_finished_total",  # failures, success rate
        "tribe_circuit_state",
        "tribe_digest_delivery_lag_seconds_bucket",
        "tribe_oldest_pending_job_age_seconds",
        "tribe_jobs",  # jobs by status
        "tribe_jobs_overdue",
        "tribe_workers_alive",
        "dramatiq_message_duration_milliseconds_sum",  # average processing time
    } <= used


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    # promtool has no query linter; recording rules are parsed exactly as queries are.
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run(promtool, "check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard():
    grafana = REPO / "deploy" / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    providers = yaml.safe_load((grafana / "provisioning/dashboards/tribe.yml").read_text())
    dashboard = json.loads(DASHBOARD.read_text())
    (datasource,) = datasources["datasources"]
    (provider,) = providers["providers"]
    mounts = dict(volume.split(":")[:2] for volume in SERVICES["grafana"]["volumes"])

    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in SERVICES["prometheus"]["ports"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource_uids = {
        target["datasource"]["uid"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    assert datasource_uids == {datasource["uid"]}
