"""The stuck-job reaper: work whose worker died, or whose message was lost, goes back to the
outbox (with the lost attempt counted), and the relay hands it over again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import dramatiq
import pytest
from dramatiq.common import current_millis

from tests.support.jobs import email_job, reload, send_queued
from tests.support.queues import queued_messages
from tests.support.waiting import drain
from tribe_shared.contract import JobStatus, Queue
from tribe_shared.models import NotificationJob, utcnow
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import build_broker
from tribe_worker.reaper import MAX_LEASE_LOSSES, reap_stuck_jobs
from tribe_worker.relay import relay_pending_jobs

NOW = utcnow().replace(microsecond=0)
LEASE = timedelta(minutes=10)
STALE = timedelta(minutes=30)


def clock():
    return NOW


def reap(broker=None) -> dict[str, int]:
    return reap_stuck_jobs(broker, clock=clock, lease=LEASE, stale=STALE)


def processing_job(claimed_ago: timedelta, *, attempts: int = 2, lease_losses: int = 0):
    """A job a worker claimed ``claimed_ago`` (on its ``attempts``-th delivery)."""
    job = email_job(status=JobStatus.PROCESSING, created_at=NOW - claimed_ago - timedelta(hours=1))
    NotificationJob.update(
        claimed_at=NOW - claimed_ago, attempts=attempts, lease_losses=lease_losses
    ).where(NotificationJob.id == job.id).execute()
    return reload(job)


def queued_job(queued_ago: timedelta, due_ago: timedelta | None = None):
    """A job handed to the broker ``queued_ago``, due since ``due_ago`` (default: since then),
    never consumed."""
    due_ago = queued_ago if due_ago is None else due_ago
    job = email_job(
        status=JobStatus.QUEUED, created_at=NOW - queued_ago, scheduled_for=NOW - due_ago
    )
    NotificationJob.update(queued_at=NOW - queued_ago).where(NotificationJob.id == job.id).execute()
    return reload(job)


@pytest.mark.parametrize("losses_before", range(MAX_LEASE_LOSSES - 1))
def test_a_job_processing_past_its_lease_goes_back_to_pending_with_its_attempt_counted(
    db_url, losses_before
):
    job = processing_job(LEASE + timedelta(seconds=1), attempts=2, lease_losses=losses_before)

    counts = reap()

    assert counts == {"taken_back": 1, "poisoned": 0, "requeued": 0}
    job = reload(job)
    assert job.status == JobStatus.PENDING
    assert job.lease_losses == losses_before + 1
    assert job.attempts == 2
    assert job.claimed_at is None
    assert job.failure_reason is None


def test_a_job_whose_worker_died_on_it_for_the_third_time_is_failed_with_a_reason(db_url):
    job = processing_job(LEASE + timedelta(seconds=1), lease_losses=MAX_LEASE_LOSSES - 1)

    counts = reap()

    assert counts == {"taken_back": 0, "poisoned": 1, "requeued": 0}
    job = reload(job)
    assert job.status == JobStatus.FAILED
    assert job.lease_losses == MAX_LEASE_LOSSES
    assert f"died during {MAX_LEASE_LOSSES} deliveries" in job.failure_reason
    assert job.processed_at == NOW


def test_a_job_processing_within_its_lease_is_left_to_its_worker(db_url):
    job = processing_job(LEASE - timedelta(seconds=1))

    assert reap() == {"taken_back": 0, "poisoned": 0, "requeued": 0}

    after = reload(job)
    assert after.status == JobStatus.PROCESSING
    assert (after.claimed_at, after.lease_losses) == (job.claimed_at, 0)


def test_a_queued_job_never_consumed_goes_back_to_pending_and_the_relay_hands_it_over(
    worker_app, stub_broker
):
    # Given a job whose message was lost long ago
    job = queued_job(STALE + timedelta(seconds=1))

    # When the reaper runs (on a broker it cannot read), it is back in the outbox
    assert reap(stub_broker) == {"taken_back": 0, "poisoned": 0, "requeued": 1}
    assert reload(job).status == JobStatus.PENDING

    # ... and the relay hands it over again
    assert relay_pending_jobs(Outbox(stub_broker), clock=clock) == 1
    (message,) = queued_messages(stub_broker)
    assert list(message.args) == [str(job.id)]
    job = reload(job)
    assert job.status == JobStatus.QUEUED
    assert job.queued_at == NOW


def test_a_queued_job_not_yet_stale_is_left_on_the_broker(db_url):
    job = queued_job(STALE - timedelta(seconds=1))

    assert reap() == {"taken_back": 0, "poisoned": 0, "requeued": 0}

    after = reload(job)
    assert after.status == JobStatus.QUEUED
    assert after.queued_at == job.queued_at


def test_a_job_handed_over_with_a_delay_is_stale_only_counting_from_when_it_was_due(db_url):
    # Queued long ago with a broker delay: due a few minutes after that, not yet stale
    job = queued_job(STALE + timedelta(minutes=1), due_ago=STALE - timedelta(minutes=2))

    assert reap() == {"taken_back": 0, "poisoned": 0, "requeued": 0}

    assert reload(job).status == JobStatus.QUEUED


def test_a_job_taken_back_from_a_dead_worker_is_delivered_as_its_next_attempt(
    worker_app, stub_broker, stub_worker, sendgrid
):
    job = processing_job(LEASE + timedelta(minutes=1), attempts=1)

    reap()
    relay_pending_jobs(Outbox(stub_broker), clock=clock)
    drain(stub_broker, stub_worker)

    (request,) = sendgrid.wait_for_requests(1)
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert job.message_id == request.message_id
    assert (job.attempts, job.lease_losses) == (2, 1)


# --- On Redis the reaper reads the broker: only a job whose message is gone is handed over again


@pytest.fixture
def redis_broker(redis_worker):
    return redis_worker.broker


def messages_of(broker, queue: str) -> list[dramatiq.Message]:
    """The messages stored for ``queue`` (waiting or fetched), decoded."""
    bodies = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    return [dramatiq.Message.decode(body) for body in bodies]


@pytest.mark.redis
def test_on_redis_only_the_stale_jobs_whose_messages_are_gone_go_back_to_the_outbox(
    redis_broker,
):
    # Given stale queued jobs: one alone, two travelling in one message, one delayed on the
    # broker's delay queue, all still waiting behind a long backlog; and one whose message
    # was lost (never on the broker, as after a flush)
    waiting = queued_job(STALE + timedelta(seconds=1))
    pair = [
        queued_job(STALE + timedelta(seconds=1)),
        queued_job(STALE + timedelta(seconds=1)),
    ]
    for job in pair:
        job.batch_key = "same content"
    delayed = queued_job(STALE + timedelta(seconds=1))
    lost = queued_job(STALE + timedelta(seconds=1))
    assert send_queued(redis_broker, [waiting, *pair], NOW) == {waiting.id, *(j.id for j in pair)}
    assert send_queued(redis_broker, [delayed], delayed.scheduled_for - timedelta(minutes=1))
    assert len(messages_of(redis_broker, Queue.EMAILS)) == 1 + 1
    (delay_message,) = messages_of(redis_broker, f"{Queue.EMAILS}.DQ")
    assert delay_message.args == (str(delayed.id),)

    # When the reaper runs
    counts = reap(redis_broker)

    # Then only the lost job is back in the outbox; the others keep their place and message
    assert counts == {"taken_back": 0, "poisoned": 0, "requeued": 1}
    assert reload(lost).status == JobStatus.PENDING
    for job in [waiting, *pair, delayed]:
        assert reload(job).status == JobStatus.QUEUED
    assert len(messages_of(redis_broker, Queue.EMAILS)) == 2


@pytest.mark.redis
def test_a_message_a_dead_worker_had_fetched_goes_back_to_its_queue_not_to_the_outbox(
    redis_broker, redis_client
):
    # Given a stale job whose message a worker fetched before it died
    job = queued_job(STALE + timedelta(seconds=1))
    send_queued(redis_broker, [job], NOW)
    namespace = redis_broker.namespace
    fetch = [
        "fetch",
        current_millis(),
        Queue.EMAILS.value,
        "dead-worker",
        redis_broker.heartbeat_timeout,
        redis_broker.dead_message_ttl,
        0,
        redis_broker._max_unpack_size(),
        10,
    ]
    assert len(redis_broker.scripts["dispatch"](keys=[namespace], args=fetch)) == 1
    redis_client.zadd(f"{namespace}:__heartbeats__", {"dead-worker": 0})
    assert redis_client.llen(f"{namespace}:{Queue.EMAILS}") == 0

    # When the reaper runs, the broker's dead-worker maintenance puts the message back at once
    assert reap(redis_broker) == {"taken_back": 0, "poisoned": 0, "requeued": 0}

    # ... so the job keeps its message and nothing is sent twice
    assert redis_client.llen(f"{namespace}:{Queue.EMAILS}") == 1
    assert reload(job).status == JobStatus.QUEUED
    assert [m.args for m in messages_of(redis_broker, Queue.EMAILS)] == [(str(job.id),)]


@pytest.mark.redis
@pytest.mark.parametrize(("stale_seconds", "timeout_ms"), [(3, 3000), (1800, 60000)])
def test_a_silent_worker_counts_as_dead_no_later_than_a_message_counts_as_lost(
    redis_settings, stale_seconds, timeout_ms
):
    broker = build_broker(replace(redis_settings, queued_stale_seconds=stale_seconds))
    try:
        assert broker.heartbeat_timeout == timeout_ms
    finally:
        broker.close()
