"""End to end on the real processes (gunicorn, dramatiq, periodiq) with PostgreSQL, Redis and a
fake SendGrid."""

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests

from tests.conftest import JWT_SECRET
from tests.support.fakes.redis_server import RedisProcess, free_port
from tests.support.fakes.sendgrid import API_KEY
from tests.support.processes import BIN, Processes, product_env
from tests.support.waiting import wait_until
from tribe_api.auth import mint_token
from tribe_shared import db
from tribe_shared.models import utcnow
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import Settings
from tribe_worker.relay import relay_pending_jobs

pytestmark = pytest.mark.e2e

#: How long accepting one email may take on the real processes. Accepting takes milliseconds
#: (bench/ measures how many); the bound only catches an accept that waits on something slow (a
#: broker or database timeout, the send itself), with room for a loaded machine.
ACCEPT_BOUND = 1.0


@pytest.fixture
def system(postgres_url, sendgrid, tmp_path):
    """release, web and worker as the Procfile runs them, on this test's own redis-server."""
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    redis_server = RedisProcess().start()
    port = free_port()
    env = product_env(
        tmp_path,
        database_url=postgres_url,
        redis_url=redis_server.url,
        sendgrid_url=sendgrid.url,
        port=port,
        RETRY_BACKOFF_MS="50",
    )
    processes = Processes(tmp_path, env)
    base = processes.start_release_web_worker(port)
    yield System(base, processes, redis_server, postgres_url)
    processes.stop_all()
    redis_server.stop()


@dataclass
class System:
    base: str
    processes: Processes
    redis_server: RedisProcess
    database_url: str

    def job(self, job_id: str, headers: dict) -> dict:
        return requests.get(f"{self.base}/api/jobs/{job_id}", headers=headers, timeout=5).json()

    def wait_sent(self, job_id: str, headers: dict) -> dict:
        def sent():
            detail = self.job(job_id, headers)
            return detail if detail["job"]["status"] == "sent" else None

        return wait_until(
            sent, timeout=30, what=f"job {job_id} sent\n{self.processes.log('worker')}"
        )


def test_an_email_posted_to_the_api_is_sent_once_by_the_worker(system, sendgrid):
    base = system.base
    headers = {"Authorization": f"Bearer {mint_token(JWT_SECRET, role='service_role')}"}
    body = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}
    session = requests.Session()
    session.post(f"{base}/api/notifications/send-email", json=body, headers=headers)  # warm-up

    started = time.perf_counter()
    response = session.post(f"{base}/api/notifications/send-email", json=body, headers=headers)
    elapsed = time.perf_counter() - started

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert elapsed < ACCEPT_BOUND, f"accepting took {elapsed * 1000:.0f} ms"
    job_id = response.json()["jobId"]

    detail = system.wait_sent(job_id, headers)
    received = [r for r in sendgrid.requests if job_id in r.job_ids]
    assert len(received) == 1
    (request,) = received
    assert request.recipients == ["nana@example.com"]
    assert request.body["subject"] == "Welcome to Tribe, Nana!"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert detail["job"]["message_id"] == request.message_id
    (log,) = detail["delivery_logs"]
    assert (log["attempt"], log["provider"], log["status"]) == (1, "sendgrid", "sent")


def test_a_job_accepted_while_redis_is_down_is_sent_after_it_returns_and_the_relay_runs(
    system, sendgrid
):
    headers = {"Authorization": f"Bearer {mint_token(JWT_SECRET, role='service_role')}"}
    body = {"to": "grandpa@example.com", "type": "system", "templateData": {"title": "Hi"}}
    system.redis_server.stop()

    response = requests.post(
        f"{system.base}/api/notifications/send-email", json=body, headers=headers, timeout=10
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    job_id = response.json()["jobId"]
    health = requests.get(f"{system.base}/api/health", timeout=5).json()
    assert health["status"] == "degraded"
    assert health["redis"] == {**health["redis"], "configured": True, "connected": False}

    system.redis_server.start()
    db.bind(system.database_url)
    relayed = relay_pending_jobs(
        Outbox(build_broker(Settings(redis_url=system.redis_server.url))),
        clock=lambda: utcnow() + timedelta(minutes=1),
    )

    assert relayed == 1
    system.wait_sent(job_id, headers)
    assert [r for r in sendgrid.requests if job_id in r.job_ids and r.message_id]


def test_the_scheduler_process_registers_the_relay_every_minute(postgres_url, tmp_path):
    redis_server = RedisProcess().start()
    processes = Processes(
        tmp_path,
        {"APP_ENV": "test", "DATABASE_URL": postgres_url, "REDIS_URL": redis_server.url},
    )
    try:
        processes.start("scheduler", f"{BIN}/periodiq", "tribe_worker.main:broker", TZ="UTC")
        wait_until(
            lambda: "relay_pending_jobs@maintenance" in processes.log("scheduler"),
            timeout=30,
            what="periodiq to register the relay",
        )
        assert "* * * * *" in processes.log("scheduler")
    finally:
        processes.stop_all()
        redis_server.stop()
