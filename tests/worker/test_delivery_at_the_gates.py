"""Delivery through the gates every worker shares: the circuit breaker and the global rate limit.

A job held back by a gate waits (``queued``, its message deferred on the broker) without spending
an attempt or a retry; a StubBroker, a real Worker, the fake SendGrid and a real database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import dramatiq
import pytest

from tests.support.clocks import RecordingSleep
from tests.support.fakes.sendgrid import Reply
from tests.support.jobs import email_job, logs_of, reload
from tests.support.waiting import drain, wait_until
from tests.support.workers import running_worker
from tribe_shared.circuit import CircuitState
from tribe_shared.contract import Actor, DeliveryStatus, JobStatus, Queue
from tribe_worker.delivery import MAX_LIMITER_WAIT_MS
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

#: The circuit of these tests' workers reopens (half-open) this soon.
RESET_SECONDS = 1.5


class EnqueueRecorder(dramatiq.Middleware):
    """Remembers every message put on the broker, with its delay."""

    def __init__(self):
        self.enqueued: list[tuple[dramatiq.Message, int | None]] = []
        self._lock = threading.Lock()

    def after_enqueue(self, broker, message, delay):
        with self._lock:
            self.enqueued.append((message, delay))

    def deferrals_of(self, job) -> list[tuple[dramatiq.Message, int]]:
        """The delayed re-enqueues of the message of ``job``."""
        with self._lock:
            return [
                (message, delay)
                for message, delay in self.enqueued
                if delay is not None and str(job.id) in message.args
            ]


@pytest.fixture
def worker_app(settings, stub_broker, client, sendgrid):
    """The conftest worker, its gates in the real Redis, with a circuit that reopens after
    :data:`RESET_SECONDS`."""
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    fast = replace(settings, circuit_reset_seconds=RESET_SECONDS)
    return build_worker(fast, broker=stub_broker, redis_client=client, provider=provider)


@pytest.fixture
def recorder(stub_broker) -> EnqueueRecorder:
    recorder = EnqueueRecorder()
    stub_broker.add_middleware(recorder)
    return recorder


@pytest.fixture
def circuit(worker_app):
    return worker_app.delivery.gates.circuit


def send(worker_app, *jobs) -> None:
    for job in jobs:
        worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))


def wait_until_sent(*jobs) -> None:
    for job in jobs:
        wait_until(lambda job=job: reload(job).status == JobStatus.SENT, what=f"{job.id} sent")


def open_by_failures(circuit, settings):
    for _ in range(settings.circuit_failure_threshold):
        circuit.record_failure()


def open_by_hold(circuit, settings):
    circuit.hold(RESET_SECONDS)


@pytest.mark.parametrize("open_circuit", [open_by_failures, open_by_hold])
def test_while_the_circuit_is_open_a_job_waits_without_spending_attempts_or_retries(
    worker_app, settings, circuit, stub_broker, stub_worker, recorder, sendgrid, open_circuit
):
    # Given an open circuit
    open_circuit(circuit, settings)
    assert circuit.status().state == CircuitState.OPEN
    reopens_at = circuit.status().reopens_at

    # When a job's message is processed
    job = email_job()
    send(worker_app, job)

    # Then nothing is sent: its message goes back to the broker, delayed, its retries untouched
    ((message, delay),) = wait_until(lambda: recorder.deferrals_of(job), what="a deferral")
    assert message.queue_name == f"{Queue.EMAILS}.DQ"
    assert message.options.get("retries", 0) == 0
    assert 0 < delay <= RESET_SECONDS * 1000 * 1.2 + 1
    waiting = reload(job)
    assert waiting.status == JobStatus.QUEUED
    assert (waiting.attempts, waiting.retry_count) == (0, 0)
    assert waiting.claimed_at is None
    assert logs_of(job) == []
    assert sendgrid.requests == []
    assert stub_broker.dead_letters == []

    # ... and once the circuit lets a probe through, the job is sent and the circuit closes
    wait_until_sent(job)
    (request,) = sendgrid.requests
    assert request.received_at >= reopens_at
    sent = reload(job)
    assert (sent.attempts, sent.retry_count) == (1, 0)
    assert [log.status for log in logs_of(job)] == [DeliveryStatus.SENT]
    status = circuit.status()
    assert status.state == CircuitState.CLOSED
    assert status.consecutive_failures == 0
    assert stub_broker.dead_letters == []


def test_a_job_held_at_a_gate_is_queued_again_as_of_the_workers_clock(
    settings, stub_broker, client, sendgrid, recorder
):
    # Given a worker whose clock reads NOW, and a circuit held open for a minute
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    app = build_worker(
        settings, broker=stub_broker, redis_client=client, provider=provider, clock=lambda: now
    )
    app.delivery.gates.circuit.hold(60)
    job = email_job()

    # When its message is processed, and held back at the circuit
    with running_worker(stub_broker):
        send(app, job)
        wait_until(lambda: recorder.deferrals_of(job), what="the job to be deferred")

    # Then it is queued again as of the worker's clock: the reaper counts its staleness from there
    job = reload(job)
    assert (job.status, job.queued_at, job.claimed_at) == (JobStatus.QUEUED, now, None)
    assert sendgrid.requests == []


def test_consecutive_server_errors_open_the_circuit_and_later_jobs_wait_instead_of_failing(
    worker_app, settings, circuit, stub_broker, recorder, sendgrid
):
    threshold = settings.circuit_failure_threshold
    sendgrid.script(*[Reply(500)] * threshold)
    first_jobs = [email_job() for _ in range(threshold)]
    send(worker_app, *first_jobs)

    # One worker thread: calls in a row (a success in flight on another thread would rightly
    # close the circuit again at once)
    with running_worker(stub_broker, threads=1):
        # Given jobs that met as many server errors in a row as the threshold
        sendgrid.wait_for_requests(threshold)

        # Then the circuit is open, and SendGrid hears nothing more while it is
        wait_until(lambda: circuit.status().state == CircuitState.OPEN, what="an open circuit")
        assert circuit.status().consecutive_failures == threshold
        later = email_job()
        send(worker_app, later)
        wait_until(lambda: recorder.deferrals_of(later), what="the later job to be deferred")
        assert len(sendgrid.requests) == threshold
        assert reload(later).retry_count == 0

        # ... and once it reopens, every job is sent, none failed, no retry spent on waiting
        wait_until_sent(*first_jobs, later)

    jobs = [reload(job) for job in first_jobs]
    assert sum(job.retry_count for job in jobs) == threshold
    assert all(job.retry_count <= settings.max_retries for job in jobs)
    assert reload(later).retry_count == 0
    assert len(sendgrid.requests) == threshold + len(jobs) + 1
    assert circuit.status().state == CircuitState.CLOSED
    assert stub_broker.dead_letters == []


def test_a_rate_limited_answer_holds_the_circuit_until_the_providers_reset_time(
    worker_app, circuit, stub_broker, stub_worker, recorder, sendgrid
):
    # X-RateLimit-Reset is whole epoch seconds; +2 puts it at least one second ahead.
    reset = int(time.time()) + 2
    sendgrid.script(Reply(429, headers={"X-RateLimit-Reset": str(reset)}))

    # Given a job SendGrid answered 429 with a reset time
    limited = email_job()
    send(worker_app, limited)
    sendgrid.wait_for_requests(1)

    # Then the circuit is held open until then, for every job (the provider and the circuit
    # each read the real clock, microseconds apart in one thread: 0.5 s is room for a loaded
    # machine)
    wait_until(lambda: circuit.status().state == CircuitState.OPEN, what="the circuit to open")
    assert reset <= circuit.status().reopens_at <= reset + 0.5
    other = email_job()
    send(worker_app, other)
    wait_until(lambda: recorder.deferrals_of(other), what="the other job to be deferred")

    # ... and nothing reaches SendGrid before the reset time
    wait_until_sent(limited, other)
    first, *after = sendgrid.requests
    assert first.message_id is None
    assert len(after) == 2
    assert all(request.received_at >= reset for request in after)
    assert reload(limited).retry_count == 1
    assert reload(other).retry_count == 0
    assert circuit.status().state == CircuitState.CLOSED


@pytest.mark.parametrize(
    ("probe_answer", "state_after_probe"),
    [(Reply(202), CircuitState.CLOSED), (Reply(503), CircuitState.OPEN)],
)
def test_the_half_open_probe_decides_whether_the_circuit_closes_or_opens_again(
    worker_app, circuit, stub_broker, stub_worker, sendgrid, probe_answer, state_after_probe
):
    # Given a circuit that will let a probe through in a moment
    circuit.hold(0.2)
    sendgrid.script(probe_answer)

    # When a job is the probe
    job = email_job()
    send(worker_app, job)
    (probe,) = sendgrid.wait_for_requests(1)

    # Then the probe's answer sets the state
    wait_until(lambda: circuit.status().state == state_after_probe, what=f"{state_after_probe}")
    if state_after_probe == CircuitState.OPEN:
        status = circuit.status()
        assert status.reopens_at == pytest.approx(status.opened_at + RESET_SECONDS)
        assert status.opened_at >= probe.received_at - 0.05
    # ... and the job is sent in the end either way
    wait_until_sent(job)
    assert circuit.status().state == CircuitState.CLOSED


def test_a_permanent_rejection_counts_as_the_provider_being_up(
    worker_app, settings, circuit, stub_broker, stub_worker, sendgrid
):
    # Given a circuit one failure short of opening
    for _ in range(settings.circuit_failure_threshold - 1):
        circuit.record_failure()
    sendgrid.script(Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]}))

    # When SendGrid rejects an email as invalid
    job = email_job()
    send(worker_app, job)
    drain(stub_broker, stub_worker)

    # Then the job fails, and the provider counts as up: the failure count starts again
    assert reload(job).status == JobStatus.FAILED
    status = circuit.status()
    assert status.state == CircuitState.CLOSED
    assert status.consecutive_failures == 0


# --- the global rate limit ---------------------------------------------------------------


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


class TimedProvider:
    """SendGrid, noting when each call was made (right after the gates let it through)."""

    def __init__(self, provider: SendGridProvider):
        self._provider = provider
        self.name = provider.name
        self.calls: list[float] = []

    def send(self, email, sender, to):
        self.calls.append(time.monotonic())
        return self._provider.send(email, sender, to)


@pytest.fixture
def provider(settings, sendgrid) -> TimedProvider:
    return TimedProvider(SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2))


@pytest.fixture
def limited_worker(settings, stub_broker, client, provider, sleep) -> Iterator:
    """A worker allowed 2 sends per second, and no retry at all: waiting must not use one."""
    limited = replace(settings, email_rate_limit_per_second=2.0, max_retries=0)
    app = build_worker(
        limited, broker=stub_broker, redis_client=client, provider=provider, sleep=sleep
    )
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield app
    worker.stop()


def test_the_rate_limit_holds_sends_back_without_spending_retries(
    limited_worker, stub_broker, recorder, sendgrid, provider, sleep
):
    # Given more jobs than the limit allows in one second
    jobs = [email_job(to=f"cousin{i}@example.com") for i in range(4)]

    # When they are all processed at once
    send(limited_worker, *jobs)
    wait_until_sent(*jobs)

    # Then no window of one second saw more than two sends (the limiter reads Redis's clock: a
    # lower bound on real time, which a slow machine can only widen)
    assert len(sendgrid.requests) == 4
    times = sorted(provider.calls)
    assert times[2] - times[0] >= 1.0 - 0.01
    assert times[3] - times[1] >= 1.0 - 0.01
    # ... the worker waited at the limiter (up to its limit) and deferred the rest
    assert sleep.seconds
    assert all(0 < s <= MAX_LIMITER_WAIT_MS / 1000 for s in sleep.seconds)
    assert any(recorder.deferrals_of(job) for job in jobs)
    # ... and without a single retry to spare, every job went out on its first attempt
    for job in jobs:
        job = reload(job)
        assert (job.status, job.attempts, job.retry_count) == (JobStatus.SENT, 1, 0)
    assert stub_broker.dead_letters == []
