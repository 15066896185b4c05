"""deploy/prometheus/, checked by promtool (Debian's ``prometheus`` package, installed by .ci/run):
the config and alert rules pass its checks, every alert fires in the rules' unit tests, each
has a summary and a runbook section, the issue's alerts are there, and Prometheus scrapes the
API and the worker where docker-compose serves them."""

from __future__ import annotations

import pytest
import yaml

from tests.support.deploy_files import (
    PROMETHEUS_DIR,
    RUNBOOK,
    alert_rules,
    compose_services,
    github_anchors,
    resolve,
)
from tests.support.processes import run

SERVICES = compose_services()
ALERT_RULES = alert_rules()


def test_the_prometheus_config_and_its_rule_files_pass_promtool(promtool):
    result = run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_the_alert_rules_pass_promtool(promtool):
    result = run(promtool, "check", "rules", "deploy/prometheus/alerts.yml")

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_the_rules_unit_tests(promtool):
    result = run(promtool, "test", "rules", "deploy/prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr

    unit_tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    checks = [check for test in unit_tests for check in test["alert_rule_test"]]
    fired = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    assert fired == {rule["alert"] for rule in ALERT_RULES}
    assert {"TribeFailedJobsHigh", "TribeQueueBacklog", "TribeApiErrorRate"} <= quiet


def test_prometheus_scrapes_every_replica_of_the_api_and_the_worker_where_compose_serves_them():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker_port = SERVICES["worker"]["environment"]["dramatiq_prom_port"]
    api_port = SERVICES["api"]["environment"]["PORT"]

    # Compose's DNS answers a service's name with every replica's address: one target each
    # (`--scale worker=3`), where a static target would reach one replica at random
    for job, service, port in (("api", "api", api_port), ("worker", "worker", worker_port)):
        assert "static_configs" not in jobs[job]
        (discovery,) = jobs[job]["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["type"] == "A"
        assert str(discovery["port"]) == port
    assert jobs["api"]["metrics_path"] == jobs["worker"]["metrics_path"] == "/metrics"
    assert config["rule_files"] == ["alerts.yml"]


def test_prometheus_sends_its_alerts_to_compose_s_alertmanager():
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (manager,) = config["alerting"]["alertmanagers"]
    alertmanager = SERVICES["alertmanager"]

    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "9093:9093" in alertmanager["ports"]
    assert alertmanager["environment"]["ALERT_WEBHOOK_URL"].startswith("${ALERT_WEBHOOK_URL:-")
    assert (
        resolve(alertmanager["environment"]["ALERT_WEBHOOK_URL"]) == "http://mailsink:8025/alerts"
    )


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda rule: rule["alert"])
def test_each_alert_has_a_summary_and_a_runbook_section(rule):
    annotations = rule["annotations"]
    path, _, anchor = annotations["runbook_url"].partition("#")

    assert annotations["summary"].strip()
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert path == "deploy/RUNBOOK.md"
    assert anchor in github_anchors(RUNBOOK.read_text())


def test_the_issue_s_alerts_are_all_there():
    expressions = {rule["alert"]: rule["expr"] for rule in ALERT_RULES}
    fors = {rule["alert"]: rule.get("for") for rule in ALERT_RULES}

    assert 'tribe_circuit_state{state="open"}' in expressions["TribeCircuitOpen"]
    assert fors["TribeCircuitOpen"] == "1m"
    assert "[1h]" in expressions["TribeFailedJobsHigh"]
    assert "> 100" in expressions["TribeFailedJobsHigh"]
    assert "> 1000" in expressions["TribeQueueBacklog"] and fors["TribeQueueBacklog"] == "5m"
    assert "tribe_workers_alive" in expressions["TribeNoWorkerHeartbeat"]
    assert 'up{job="worker"}' in expressions["TribeWorkerDown"]
    assert "> 600" in expressions["TribeOldestPendingJob"]
    assert 'status=~"5.."' in expressions["TribeApiErrorRate"]
    assert "tribe_database_up == 0" in expressions["TribeDatabaseDown"]
    assert "tribe_redis_up == 0" in expressions["TribeRedisDown"]
