"""A provider that refuses our credentials (401/403, or a proxy's 407) pauses sending for every
worker: the circuit opens, jobs go back to ``queued`` without spending a retry, one probe per reset
interval asks again, an alerting metric counts the refusals, and once the key works everything
goes out."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import with_settings
from tests.support.fakes.proxy import USER
from tests.support.fakes.sendgrid import API_KEY, Reply
from tests.support.jobs import email_job, logs_of, reload
from tests.support.metrics import readings
from tests.support.waiting import wait_until
from tests.support.workers import running_worker
from tribe_shared.circuit import CircuitState
from tribe_shared.contract import Actor, DeliveryStatus, JobStatus
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

#: The reset interval of these tests' circuit: one probe per interval while refused.
RESET = 0.4
REFUSED = {"provider": "sendgrid", "outcome": "refused"}
THREADS = 4


@pytest.fixture
def paused_worker(settings, stub_broker, client, sendgrid):
    """The actors on the stub broker with a short circuit reset, and the fake refusing the key."""
    sendgrid.default = Reply(
        401, body={"errors": [{"message": "The provided authorization grant is invalid"}]}
    )
    fast = with_settings(settings, circuit_reset_seconds=RESET, max_retries=1)
    provider = SendGridProvider(fast.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(fast, broker=stub_broker, redis_client=client, provider=provider)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_pauses_sending_without_failing_jobs_or_spending_retries(
    paused_worker, stub_broker, sendgrid, status
):
    # Given five emails, and a provider that refuses our key
    sendgrid.default = Reply(status, body={"errors": [{"message": "access forbidden"}]})
    jobs = [email_job(to=f"nana{n}@example.com") for n in range(5)]
    watched = readings(("tribe_provider_calls_total", REFUSED))

    with running_worker(stub_broker, threads=THREADS):
        for job in jobs:
            paused_worker.actors[Actor.SEND_EMAIL].send(str(job.id))
        # When the provider has refused a few probes
        wait_until(lambda: len(sendgrid.requests) >= 3, what="three refused calls")
        circuit = paused_worker.delivery.gates.circuit.status()

        # Then no job failed or spent a retry, and the circuit keeps every worker away
        for job in map(reload, jobs):
            assert job.status in (JobStatus.QUEUED, JobStatus.PROCESSING), job.status
            assert job.retry_count == 0
        assert circuit.state in (CircuitState.OPEN, CircuitState.HALF_OPEN)
        assert watched.change("tribe_provider_calls_total", **REFUSED) >= 3
        # And no retry storm: past the calls in flight when the first refusal came (one per
        # worker thread at most), the provider was asked once per reset interval
        times = [request.received_at for request in sendgrid.requests]
        in_flight = [t for t in times if t < times[0] + RESET / 2]
        assert len(in_flight) <= THREADS
        probes = [times[len(in_flight) - 1], *times[len(in_flight) :]]
        gaps = [b - a for a, b in itertools.pairwise(probes)]
        assert all(gap >= RESET * 0.9 for gap in gaps), gaps

        # When the key is fixed, every email goes out, retries untouched
        sendgrid.default = Reply(202)
        wait_until(
            lambda: all(reload(job).status == JobStatus.SENT for job in jobs),
            what="every job sent once the key works",
        )
    for job in map(reload, jobs):
        assert job.retry_count == 0
        statuses = [log.status for log in logs_of(job)]
        assert statuses[-1] == DeliveryStatus.SENT
        assert set(statuses[:-1]) <= {DeliveryStatus.TRANSIENT_FAILURE}
    refused_logs = [log for job in jobs for log in logs_of(job) if log.error]
    assert refused_logs and all(str(status) in log.error for log in refused_logs)


def test_a_job_meeting_refused_proxy_credentials_waits_without_spending_a_retry(
    settings, stub_broker, client, sendgrid, guarded_proxy
):
    # Given a worker whose proxy refuses its credentials
    environ = {"HTTP_PROXY": f"http://{USER}:wrong-password@{guarded_proxy.address}"}
    provider = SendGridProvider(API_KEY, sendgrid.url, environ=environ, timeout=2)
    fast = with_settings(settings, circuit_reset_seconds=0.4, max_retries=1)
    worker = build_worker(fast, broker=stub_broker, redis_client=client, provider=provider)
    job = email_job(to="nana@example.com")

    with running_worker(stub_broker, threads=2):
        # When its email has been tried a few times
        worker.actors[Actor.SEND_EMAIL].send(str(job.id))
        wait_until(lambda: guarded_proxy.refused >= 2, what="two refused attempts")
        circuit = worker.delivery.gates.circuit.status()

        # Then the job waits, its retries untouched, behind an open circuit
        job = reload(job)
        assert job.status in (JobStatus.QUEUED, JobStatus.PROCESSING), job.status
        assert job.retry_count == 0
        assert circuit.state in (CircuitState.OPEN, CircuitState.HALF_OPEN)
    assert sendgrid.requests == []
