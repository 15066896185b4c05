"""A database outage seen from the worker: a delivery waits it out without using up a retry, and a
provider's answer is recorded once the database is back instead of being sent again.

The fault suite stops a real PostgreSQL server under the real processes
(``tests/faults/test_postgres_faults.py``); these tests pin the two mechanisms down below that.
"""

from __future__ import annotations

import dramatiq
import peewee
import pytest

from tests.support.fakes.sendgrid import API_KEY
from tests.support.jobs import email_job, reload
from tests.support.waiting import wait_until
from tribe_shared import db
from tribe_shared.contract import Actor, JobStatus
from tribe_shared.settings import Settings
from tribe_worker.recording import RECORD_RETRY_SECONDS, patiently
from tribe_worker.worker import build_worker

#: Nothing listens on the discard port: connecting is refused at once, as to a stopped server.
UNREACHABLE_DATABASE = "postgresql://postgres@127.0.0.1:9/tribe"


class FlakyWrite:
    """A write that finds the database unreachable ``failures`` times, then succeeds."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise peewee.OperationalError("server closed the connection unexpectedly")


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_recording_an_answer_waits_out_a_short_database_outage(sqlite_url):
    # Given a write that fails twice because the database is unreachable
    write, time = FlakyWrite(failures=2), FakeTime()

    # When it is recorded with ten seconds of patience
    patiently(write, 10.0, sleep=time.sleep, monotonic=lambda: time.now)

    # Then it was tried until it went through, pausing between tries
    assert write.calls == 3
    assert time.now == 2 * RECORD_RETRY_SECONDS


def test_recording_gives_up_when_the_outage_outlasts_its_patience(sqlite_url):
    write, time = FlakyWrite(failures=100), FakeTime()

    with pytest.raises(peewee.OperationalError):
        patiently(write, 2.0, sleep=time.sleep, monotonic=lambda: time.now)

    assert write.calls == 2.0 / RECORD_RETRY_SECONDS + 1


def test_a_bad_statement_is_not_taken_for_an_outage(sqlite_url):
    def bad_statement():
        db.database.execute_sql("SELECT no_such_column FROM notification_jobs")

    with pytest.raises(peewee.OperationalError):
        patiently(bad_statement, 10.0, sleep=pytest.fail)


def test_a_delivery_that_meets_a_database_outage_waits_without_using_up_a_retry(
    sqlite_url, stub_broker, sendgrid, caplog
):
    # Given a worker allowed no retry at all, and a queued job
    settings = Settings(
        app_env="test",
        database_url=sqlite_url,
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=sendgrid.url,
        max_retries=0,
        outbox_poll_seconds=0.1,
    )
    job = email_job()
    worker_app = build_worker(settings, broker=stub_broker)
    message = worker_app.actors[Actor.SEND_EMAIL].message(str(job.id))

    # When its message is processed while the database is unreachable
    db.bind(UNREACHABLE_DATABASE)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        stub_broker.enqueue(message)
        # (a deferred message spends only moments on the broker's delay queue before the
        # worker takes it back to hold until its time: the worker's log line is what lasts)
        wait_until(
            lambda: (
                stub_broker.dead_letters
                or any("delivery deferred" in r.getMessage() for r in caplog.records)
            ),
            what="the message to be deferred or dead-lettered",
        )
        # ... and the database comes back
        db.bind(sqlite_url)

        # Then the job is sent: the outage used up no retry and dead-lettered nothing
        wait_until(lambda: reload(job).status == JobStatus.SENT, what="the job to be sent")
    finally:
        worker.stop()
    assert stub_broker.dead_letters == []
    assert reload(job).retry_count == 0
    assert len(sendgrid.requests) == 1
