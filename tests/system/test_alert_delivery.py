"""Alerts reach someone: a rule that fires in a real Prometheus reaches a local webhook receiver
through a real Alertmanager (Debian's ``prometheus`` and ``prometheus-alertmanager``) configured
as docker-compose configures it: ``deploy/alertmanager/render.sh`` writes its configuration from
``ALERT_WEBHOOK_URL``. The receiver is compose's mail sink, the default webhook."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.deploy_files import PROMETHEUS_DIR, REPO, missing_tool
from tests.support.fakes.redis_server import free_port
from tests.support.processes import Processes
from tests.support.waiting import wait_until

ALERTMANAGER_DIR = REPO / "deploy" / "alertmanager"


def tool(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    missing_tool(names[0])


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ALERTMANAGER_DIR / "render.sh"),
         str(ALERTMANAGER_DIR / "alertmanager.yml.tmpl"), str(tmp_path / "alertmanager.yml")],
        env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_the_alertmanager_config_needs_a_webhook_url(tmp_path):
    result = render(tmp_path)

    assert result.returncode != 0
    assert "ALERT_WEBHOOK_URL must be configured" in result.stderr


def test_the_rendered_config_passes_amtool_with_the_webhook_and_optional_email(tmp_path):
    amtool = tool("amtool", "prometheus-alertmanager")
    if not amtool.endswith("amtool"):
        missing_tool("amtool")
    env = {"ALERT_WEBHOOK_URL": "https://hooks.example/tribe?a=1&b=2"}
    email = {"ALERT_EMAIL_TO": "oncall@example.com", "ALERT_SMTP_SMARTHOST": "smtp.example:587"}

    for variables in (env, {**env, **email}):
        assert render(tmp_path, **variables).returncode == 0
        config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
        check = subprocess.run(
            [amtool, "check-config", str(tmp_path / "alertmanager.yml")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        (receiver,) = config["receivers"]
        assert receiver["webhook_configs"][0]["url"] == env["ALERT_WEBHOOK_URL"]
        assert ("email_configs" in receiver) == ("ALERT_EMAIL_TO" in variables)


@pytest.fixture
def monitoring(tmp_path, mail_sink) -> Iterator[str]:
    """Alertmanager rendered to post to the mail sink, and Prometheus with one rule that fires
    at once, sending to it as deploy/prometheus/prometheus.yml sends to compose's."""
    alertmanager = tool("prometheus-alertmanager", "alertmanager")
    prometheus = tool("prometheus")
    assert render(tmp_path, ALERT_WEBHOOK_URL=f"{mail_sink}/alerts").returncode == 0
    am_port, prom_port = free_port(), free_port()
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump(
            {"groups": [{"name": "test", "rules": [{
                "alert": "TribeTestAlwaysFiring",
                "expr": "vector(1)",
                "labels": {"severity": "critical"},
                "annotations": {"summary": "fires from the first evaluation"},
            }]}]}
        )
    )  # fmt: skip
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"evaluation_interval": "1s", "scrape_interval": "15s"}
    config["rule_files"] = [str(tmp_path / "rules.yml")]
    config["scrape_configs"] = []
    (manager,) = config["alerting"]["alertmanagers"]
    manager["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes = Processes(tmp_path, {})
    processes.start(
        "alertmanager", alertmanager,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",
    )  # fmt: skip
    processes.wait_healthy(f"http://127.0.0.1:{am_port}/-/ready", "alertmanager")
    processes.start(
        "prometheus", prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        # A first notification can go before Alertmanager is discovered (dropped); the resend
        # (every minute by default) comes sooner here.
        "--rules.alert.resend-delay=2s",
    )  # fmt: skip
    yield mail_sink
    processes.stop_all()


def test_a_firing_rule_reaches_the_webhook_receiver(monitoring):
    def delivered():
        alerts = requests.get(f"{monitoring}/messages.json", timeout=5).json()["alerts"]
        return [a for a in alerts if a["alertname"] == "TribeTestAlwaysFiring"]

    (alert, *_) = wait_until(delivered, timeout=60, what="the alert at the webhook")
    assert alert["status"] == "firing"
    assert alert["summary"] == "fires from the first evaluation"
    assert alert["labels"]["severity"] == "critical"
