"""A real Prometheus (Debian's ``prometheus`` package) scrapes the running API and worker on
loopback, and their metrics are queried through its HTTP API, as the deploy/ config has it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import yaml

from tests.conftest import JWT_SECRET, RUN_ID
from tests.support.deploy_files import PROMETHEUS_DIR, missing_tool
from tests.support.fakes.redis_server import free_port
from tests.support.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.support.processes import Processes
from tests.support.waiting import wait_until
from tribe_api.auth import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

#: Scrapes and rule evaluations every second, so a test waits seconds, not minutes.
SCRAPE_INTERVAL = "1s"


@dataclass
class Monitored:
    api: str
    prometheus: str
    processes: Processes

    def query(self, promql: str) -> list[dict]:
        answer = requests.get(
            f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=5
        ).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The value of a one-series query, or None while it has no series."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


def prometheus_config(api_port: int, worker_port: int) -> dict:
    """deploy/prometheus/prometheus.yml's scrape jobs, pointed at loopback."""
    deployed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {"api": f"127.0.0.1:{api_port}", "worker": f"127.0.0.1:{worker_port}"}
    jobs = []
    for job in deployed["scrape_configs"]:
        jobs.append({**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]})
    interval = {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL}
    return {"global": interval, "scrape_configs": jobs}


@pytest.fixture(scope="module")
def monitored(redis_url, tmp_path_factory) -> Iterator[Monitored]:
    """release, web and worker as the Procfile runs them (SQLite, Redis), and a Prometheus."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        missing_tool("prometheus")
    tmp = tmp_path_factory.mktemp("monitored")
    sendgrid = FakeSendGrid().start()
    api_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
    (tmp / "api-metrics").mkdir()
    processes = Processes(
        tmp,
        {
            "APP_ENV": "test",
            "DATABASE_URL": f"sqlite:///{tmp}/tribe.db",
            "REDIS_URL": redis_url,
            "REDIS_NAMESPACE": f"tribe-test-{RUN_ID}-monitored",
            "JWT_SECRET": JWT_SECRET,
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": sendgrid.url,
            "PORT": str(api_port),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "api-metrics"),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_port": str(worker_port),
            "dramatiq_prom_db": str(tmp / "worker-metrics"),
        },
    )
    try:
        api = processes.start_release_web_worker(api_port)
        config = tmp / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(api_port, worker_port)))
        processes.start(
            "prometheus",
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        )
        url = f"http://127.0.0.1:{prometheus_port}"
        processes.wait_healthy(f"{url}/-/ready", "prometheus")
        yield Monitored(api, url, processes)
    finally:
        processes.stop_all()
        sendgrid.stop()


def test_prometheus_counts_the_api_s_requests_by_route(monitored):
    # Given three requests to the health route
    for _ in range(3):
        assert requests.get(f"{monitored.api}/api/health", timeout=5).status_code == 200

    # When Prometheus scrapes the API, then its request counter has them
    def counted():
        value = monitored.value('sum(tribe_http_requests_total{route="/api/health"})')
        return value is not None and value >= 3

    wait_until(counted, timeout=15, interval=0.5, what="tribe_http_requests_total in Prometheus")
    assert monitored.value('up{job="api"}') == 1


def test_prometheus_sees_a_sent_job_in_the_worker_s_metrics(monitored):
    # Given an email accepted by the API and sent by the worker
    headers = {"Authorization": f"Bearer {mint_token(JWT_SECRET, role='service_role')}"}
    body = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}
    response = requests.post(
        f"{monitored.api}/api/notifications/send-email", json=body, headers=headers, timeout=5
    )
    assert response.status_code == 202, response.text
    job_url = f"{monitored.api}/api/jobs/{response.json()['jobId']}"

    def sent():
        job = requests.get(job_url, headers=headers, timeout=5).json()["job"]
        return job["status"] == "sent"

    wait_until(sent, timeout=20, what=f"the job sent\n{monitored.processes.log('worker')}")

    # When Prometheus scrapes the worker, then it counts the sent job
    def counted():
        value = monitored.value('sum(tribe_jobs_finished_total{status="sent"})')
        return value is not None and value >= 1

    wait_until(counted, timeout=15, interval=0.5, what="tribe_jobs_finished_total in Prometheus")
    assert monitored.value('up{job="worker"}') == 1
