"""The worker's metrics on the real processes: ``dramatiq tribe_worker.main:broker --processes 2``
serves one exposition (``dramatiq_prom_port``) summing the ``dramatiq_*`` and ``tribe_*`` metrics
of both worker processes; each process beats while it runs and removes its beat when stopped;
the worker's log is JSON lines. Release + web (gunicorn) + worker on a redis-server of the
test's own, the run's PostgreSQL database and the fake SendGrid
(see tests/support/deployment.py)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.deployment import DELIVERY_TIMEOUT, Deployment, truncate_all
from tests.support.fakes.redis_server import RedisProcess
from tests.support.prometheus import scrape, total
from tests.support.waiting import wait_until
from tribe_shared import db
from tribe_shared.contract import Actor, worker_heartbeats_key

pytestmark = pytest.mark.e2e

#: Jobs sent through the API in this test: enough for both worker processes to take some.
JOBS = 40


@pytest.fixture
def deployment(postgres_url, sendgrid, tmp_path):
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    database = db.bind(postgres_url)
    truncate_all()
    deployment = Deployment(tmp_path, postgres_url, sendgrid, {})
    try:
        deployment.start_web()
        deployment.start_worker(processes=2, threads=2)
        yield deployment
    finally:
        deployment.stop()
        truncate_all()
        database.close_all()


def test_one_scrape_sums_dramatiq_and_tribe_metrics_over_both_worker_processes(deployment):
    client = deployment.broker.client
    beats = worker_heartbeats_key(deployment.namespace)
    # Given both worker processes running, each with its heartbeat
    wait_until(lambda: client.zcard(beats) == 2, what="a heartbeat from each worker process")
    members = {m.decode() for m in client.zrange(beats, 0, -1)}
    assert len({m.rsplit(":", 1)[1] for m in members}) == 2

    # When jobs go through the API and the workers send them all
    job_ids = [job["jobId"] for job in deployment.send_emails(JOBS)]
    wait_until(
        lambda: deployment.all_have(job_ids),
        timeout=DELIVERY_TIMEOUT,
        what="every job to be sent",
    )

    # Then one scrape of the worker's port counts every send, whichever process made it
    samples = wait_until(lambda: scrape(deployment.metrics_url), what="the exposition server")
    assert total(samples, "tribe_provider_calls_total", provider="sendgrid", outcome="sent") == JOBS
    assert total(samples, "tribe_jobs_finished_total", kind="email", status="sent") == JOBS
    assert total(samples, "tribe_provider_call_duration_seconds_count", provider="sendgrid") == JOBS
    # ... with Dramatiq's own metrics beside ours
    assert total(samples, "dramatiq_messages_total", actor_name=Actor.SEND_EMAIL.value) == JOBS
    assert total(samples, "dramatiq_message_duration_milliseconds_count") >= JOBS
    # ... written by both processes into the one directory
    written_by = {
        re.search(r"_(\d+)\.db$", path.name).group(1)
        for path in deployment.metrics_dir.glob("counter_*.db")
    }
    assert len(written_by) == 2

    # ... and the worker's log has a JSON line for each job sent
    lines = [json.loads(line) for line in deployment.worker_log().splitlines() if line[:1] == "{"]
    sent = {line["job_id"]: line for line in lines if line.get("state") == "sent"}
    assert set(sent) == set(job_ids)
    for line in sent.values():
        assert line["actor"] == Actor.SEND_EMAIL.value
        assert line["attempt"] == 1
        assert line["duration_ms"] >= 0

    # When the worker is stopped cleanly, both heartbeats are gone
    assert deployment.terminate_worker() == 0
    assert client.zcard(beats) == 0
