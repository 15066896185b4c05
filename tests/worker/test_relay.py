"""The outbox relay: due ``pending`` jobs reach the broker most urgent and oldest first, once,
and nothing accepted while Redis was down is lost."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import dramatiq
import pytest
from falcon import testing

from tests.conftest import skip_unless_ci, with_settings
from tests.support.fakes.redis_server import RedisProcess
from tests.support.fakes.sendgrid import API_KEY
from tests.support.jobs import email_job, reload
from tests.support.queues import queued_messages
from tests.support.waiting import wait_until
from tribe_api.app import create_app
from tribe_shared import db
from tribe_shared.contract import Actor, JobStatus, Queue, Urgency
from tribe_shared.models import utcnow
from tribe_shared.outbox import HAND_OVER_HORIZON, Outbox, batch_key
from tribe_shared.redis_broker import build_broker
from tribe_worker.actors import TICK_SECONDS
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.relay import GRACE, relay_pending_jobs
from tribe_worker.worker import build_worker

NOW = utcnow().replace(microsecond=0)


def clock():
    return NOW


def job_ids_in(messages: list[dramatiq.Message]) -> list[list[str]]:
    return [arg if isinstance(arg, list) else [arg] for m in messages for arg in m.args]


def pending_job(age: timedelta, **fields):
    created_at = NOW - age
    return email_job(status=JobStatus.PENDING, created_at=created_at, **fields)


def test_relay_hands_over_the_most_urgent_jobs_first_then_the_oldest(worker_app, stub_broker):
    # Given pending jobs of every urgency, all past the grace period
    low_oldest = pending_job(timedelta(hours=2), urgency=Urgency.LOW)
    normal_old = pending_job(timedelta(hours=1), urgency=Urgency.NORMAL)
    normal_new = pending_job(timedelta(minutes=1), urgency=Urgency.NORMAL)
    high = pending_job(timedelta(minutes=30), urgency=Urgency.HIGH)
    urgent = pending_job(timedelta(minutes=2), urgency=Urgency.URGENT)

    # When the relay runs
    handed = relay_pending_jobs(Outbox(stub_broker), clock=clock)

    # Then each is on its lane once, in order of urgency and then of age
    assert handed == 5
    fast_lane = job_ids_in(queued_messages(stub_broker, Queue.URGENT))
    normal_lane = job_ids_in(queued_messages(stub_broker, Queue.EMAILS))
    assert fast_lane == [[str(job.id)] for job in (urgent, high)]
    assert normal_lane == [[str(job.id)] for job in (normal_old, normal_new, low_oldest)]


def test_relay_keeps_a_batch_of_urgent_emails_ahead_of_older_normal_ones(worker_app, stub_broker):
    # Given older normal emails, a later batch of identical urgent ones, then a normal batch
    normal = pending_job(timedelta(hours=2), urgency=Urgency.NORMAL)
    key = batch_key("urgent batch")
    urgent_batch = [
        pending_job(timedelta(hours=1), urgency=Urgency.URGENT, batch_key=key, to=to)
        for to in ("nana@example.com", "papa@example.com")
    ]
    normal_batch = [
        pending_job(timedelta(minutes=1), batch_key=batch_key("normal batch"), to=to)
        for to in ("nana@example.com", "papa@example.com")
    ]

    relay_pending_jobs(Outbox(stub_broker), clock=clock)

    (fast,) = queued_messages(stub_broker, Queue.URGENT)
    assert fast.actor_name == "send_email_batch_urgent"
    assert sorted(fast.args[0]) == sorted(str(job.id) for job in urgent_batch)
    first, second = queued_messages(stub_broker, Queue.EMAILS)
    assert list(first.args) == [str(normal.id)]
    assert second.actor_name == Actor.SEND_EMAIL_BATCH
    assert sorted(second.args[0]) == sorted(str(job.id) for job in normal_batch)


def test_relay_hands_each_job_over_exactly_once(worker_app, stub_broker):
    jobs = [pending_job(timedelta(minutes=m)) for m in (1, 2, 3)]

    first_run = relay_pending_jobs(Outbox(stub_broker), clock=clock)
    second_run = relay_pending_jobs(Outbox(stub_broker), clock=clock)

    assert (first_run, second_run) == (3, 0)
    assert len(queued_messages(stub_broker)) == 3
    for job in jobs:
        job = reload(job)
        assert job.status == JobStatus.QUEUED
        assert job.queued_at == NOW


def test_relays_running_at_the_same_time_hand_each_job_over_once(worker_app, stub_broker):
    jobs = [pending_job(timedelta(minutes=1)) for _ in range(40)]
    start = threading.Barrier(2)
    handed: list[int] = []

    def relay():
        start.wait(timeout=10)
        with db.connection():
            handed.append(relay_pending_jobs(Outbox(stub_broker), clock=clock, batch_size=7))

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sum(handed) == len(jobs)
    sent = sorted(ids[0] for ids in job_ids_in(queued_messages(stub_broker)))
    assert sent == sorted(str(job.id) for job in jobs)


def test_relay_leaves_jobs_younger_than_the_grace_period_to_their_own_request(
    worker_app, stub_broker
):
    young = pending_job(GRACE - timedelta(seconds=1))

    assert relay_pending_jobs(Outbox(stub_broker), clock=clock) == 0

    assert reload(young).status == JobStatus.PENDING
    assert queued_messages(stub_broker) == []


def test_a_job_scheduled_beyond_the_horizon_stays_pending_until_it_comes_within_it(
    worker_app, stub_broker
):
    later = NOW + HAND_OVER_HORIZON + timedelta(minutes=10)
    job = pending_job(timedelta(minutes=1), scheduled_for=later)

    assert relay_pending_jobs(Outbox(stub_broker), clock=clock) == 0
    assert reload(job).status == JobStatus.PENDING
    assert queued_messages(stub_broker) == []
    assert queued_messages(stub_broker, f"{Queue.EMAILS}.DQ") == []

    # Once within the horizon it is handed over, delayed until it is due
    almost_due = later - timedelta(minutes=1)
    assert relay_pending_jobs(Outbox(stub_broker), clock=lambda: almost_due) == 1
    assert reload(job).status == JobStatus.QUEUED
    assert queued_messages(stub_broker) == []
    (delayed,) = queued_messages(stub_broker, f"{Queue.EMAILS}.DQ")
    assert list(delayed.args) == [str(job.id)]
    assert delayed.options["eta"] - delayed.message_timestamp == pytest.approx(60_000, abs=2_000)


# --- The outage story on a Redis of the test's own --------------------------------------


@pytest.fixture
def own_redis():
    """A ``redis-server`` of this test's own to stop and start (never the shared one)."""
    if not RedisProcess.available():
        skip_unless_ci("redis-server is not installed")
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.mark.redis
def test_an_email_accepted_while_redis_is_down_is_sent_once_it_is_back(
    settings, own_redis, sendgrid, tokens
):
    # Given the API and a worker on a Redis broker
    settings = with_settings(settings, redis_url=own_redis.url)
    broker = build_broker(settings)
    provider = SendGridProvider(API_KEY, sendgrid.url, timeout=2)
    build_worker(settings, broker=broker, provider=provider)
    api = testing.TestClient(create_app(settings, broker=broker))
    try:
        # When Redis is down, an email is still accepted, and waits as pending
        own_redis.stop()
        response = api.simulate_post(
            "/api/notifications/send-email",
            json={"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}},
            headers=tokens.service,
        )
        assert response.status_code == 202, response.text
        assert response.json["status"] == JobStatus.PENDING
        job_id = response.json["jobId"]
        assert reload(job_id).status == JobStatus.PENDING

        # ... and once Redis is back, the relay hands it over
        own_redis.start()
        handed = relay_pending_jobs(Outbox(broker), clock=lambda: utcnow() + timedelta(minutes=1))
        assert handed == 1
        assert reload(job_id).status == JobStatus.QUEUED

        # Then a worker sends it
        worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
        worker.start()
        try:
            (request,) = sendgrid.wait_for_requests(1)
            assert request.job_ids == [job_id]
            wait_until(
                lambda: reload(job_id).status == JobStatus.SENT, what=f"job {job_id} to be sent"
            )
        finally:
            worker.stop()
        assert reload(job_id).message_id == request.message_id
    finally:
        broker.close()


def test_a_relay_tick_repeats_itself_as_a_delayed_message_until_its_minute_is_over(
    settings, stub_broker
):
    # Given a worker whose clock reads NOW and whose relay polls every 2 seconds within a tick
    worker = build_worker(
        with_settings(settings, outbox_poll_seconds=2), broker=stub_broker, clock=clock
    )
    relay = worker.actors[Actor.RELAY_PENDING_JOBS]

    # When periodiq's tick runs the relay
    before_ms = int(time.time() * 1000)
    relay.fn()
    after_ms = int(time.time() * 1000)

    # Then the next run is a delayed message carrying the tick's end, not a sleeping thread:
    # the end 45 s after NOW, and the message due 2 s after it was sent (Dramatiq stamps its
    # eta from the real clock, read between the test's two readings)
    (repeat,) = queued_messages(stub_broker, "maintenance.DQ")
    (ends_at,) = repeat.args
    assert repeat.actor_name == Actor.RELAY_PENDING_JOBS
    assert ends_at == NOW.timestamp() + TICK_SECONDS == NOW.timestamp() + 45
    assert before_ms + 2_000 <= repeat.options["eta"] <= after_ms + 2_000

    # And a run near the end of its minute does not repeat again
    relay.fn(NOW.timestamp() + 1)
    assert len(queued_messages(stub_broker, "maintenance.DQ")) == 1
