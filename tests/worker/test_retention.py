"""Retention: finished jobs and their delivery logs go after JOB_RETENTION_DAYS, personal content
after CONTENT_RETENTION_DAYS; waiting and running jobs are never touched. SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support.jobs import email_job, reload
from tribe_shared.contract import (
    PERIODIC_ACTORS,
    Actor,
    DeliveryStatus,
    JobKind,
    JobStatus,
    NotificationType,
    Queue,
)
from tribe_shared.models import BulkAction, BulkActionJob, DeliveryLog, NotificationJob, utcnow
from tribe_worker import retention
from tribe_worker.actors import apply_retention as apply_retention_actor
from tribe_worker.retention import FINISHED, apply_retention, scrubbed_content
from tribe_worker.worker import ACTORS

NOW = utcnow().replace(microsecond=0)
UPDATE_CONTENT = {
    "title": "First steps",
    "body": "Emma walked to Grandma today!",
    "child_name": "Emma",
    "content_type": "milestone",
    "media_urls": ["https://cdn.tribe.example/emma.jpg"],
    "update_id": str(uuid.uuid4()),
}


def clock():
    return NOW


def run(**options):
    return apply_retention(job_days=90, content_days=30, clock=clock, **options)


def finished_job(status=JobStatus.SENT, *, days_ago: float, content=None, logs: int = 1):
    """A job that ended ``days_ago`` with ``logs`` delivery-log rows."""
    job = email_job(status=status, content=content, created_at=NOW - timedelta(days=days_ago + 1))
    NotificationJob.update(processed_at=NOW - timedelta(days=days_ago)).where(
        NotificationJob.id == job.id
    ).execute()
    for attempt in range(1, logs + 1):
        DeliveryLog.create(
            job=job.id, attempt=attempt, provider="sendgrid", status=DeliveryStatus.SENT
        )
    return reload(job)


def exists(job) -> bool:
    return NotificationJob.select().where(NotificationJob.id == job.id).exists()


def logs_of(job) -> int:
    return DeliveryLog.select().where(DeliveryLog.job == job.id).count()


@pytest.mark.parametrize("status", FINISHED)
def test_a_finished_job_past_the_retention_goes_with_its_delivery_logs(db_url, status):
    # Given a job that finished 91 days ago, with two attempts logged
    old = finished_job(status, days_ago=91, logs=2)
    # And one that finished 89 days ago
    recent = finished_job(status, days_ago=89)

    result = run()

    # Then only the old one is gone, its delivery logs with it
    assert result.deleted == 1
    assert not exists(old) and logs_of(old) == 0
    assert exists(recent) and logs_of(recent) == 1


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING])
def test_waiting_and_running_jobs_are_never_touched_however_old(db_url, status):
    # Given a job created a year ago that is still waiting or running (processed_at set too,
    # as a retried job's was before its retry)
    job = email_job(status=status, created_at=NOW - timedelta(days=365))
    NotificationJob.update(processed_at=NOW - timedelta(days=300)).where(
        NotificationJob.id == job.id
    ).execute()

    result = run()

    # Then it is neither deleted nor scrubbed
    assert result == retention.RetentionRun(0, 0)
    kept = reload(job)
    assert kept.to_email == "nana@example.com" and kept.scrubbed_at is None


def test_an_old_finished_digest_goes_and_its_schedule_s_waiting_digest_is_kept(db_url):
    # Given a digest sent 100 days ago and a digest of a later run still queued (digests wait
    # only for unfinished earlier ones: nothing reads a finished digest)
    period = NOW - timedelta(days=100)
    sent = NotificationJob.create(
        kind=JobKind.DIGEST,
        status=JobStatus.SENT,
        notification_type=NotificationType.DIGEST,
        digest_period=period,
        content={"window_end": period.isoformat()},
        created_at=period,
        processed_at=period,
    )
    waiting = NotificationJob.create(
        kind=JobKind.DIGEST,
        status=JobStatus.QUEUED,
        notification_type=NotificationType.DIGEST,
        digest_period=NOW - timedelta(days=99),
        content={"window_end": period.isoformat()},
        created_at=NOW - timedelta(days=99),
    )

    run()

    assert not exists(sent)
    assert reload(waiting).status == JobStatus.QUEUED


def test_deleting_goes_in_bounded_batches_until_nothing_is_left(db_url):
    # Given 25 expired jobs
    jobs = [finished_job(days_ago=91 + i) for i in range(25)]

    # When retention runs with batches of 10
    result = run(batch_size=10)

    # Then all went, oldest first, in three batches
    assert result.deleted == 25
    assert not any(exists(job) for job in jobs)


def test_a_run_stops_starting_batches_when_its_time_is_up(db_url):
    # Given 30 expired jobs and a clock that says the run's time is up after one batch
    for i in range(30):
        finished_job(days_ago=91 + i, logs=0)
    ticks = itertools.chain([0.0, 0.0], itertools.repeat(100.0))

    result = run(batch_size=10, run_seconds=50, monotonic=lambda: next(ticks))

    # Then the oldest batch went and the rest waits for the next run
    assert result.deleted == 10
    assert NotificationJob.select().count() == 20


@pytest.mark.parametrize("status", FINISHED)
def test_personal_content_is_scrubbed_after_the_content_retention_keeping_the_row(db_url, status):
    # Given a notification job that finished 31 days ago and one that finished 29 days ago
    old = finished_job(status, days_ago=31, content=UPDATE_CONTENT)
    recent = finished_job(status, days_ago=29, content=UPDATE_CONTENT)

    result = run()

    # Then the old row is kept with its history but no address and no personal text
    assert result.scrubbed == 1
    scrubbed = reload(old)
    assert scrubbed.status == status and scrubbed.processed_at == old.processed_at
    assert scrubbed.to_email is None
    assert scrubbed.scrubbed_at == NOW
    assert set(scrubbed.content) == set(UPDATE_CONTENT)
    assert scrubbed.content["body"] is None and scrubbed.content["title"] is None
    assert scrubbed.content["child_name"] is None and scrubbed.content["media_urls"] == []
    assert scrubbed.content["content_type"] == "milestone"
    assert logs_of(old) == 1
    # And the recent one is untouched
    assert reload(recent).content == UPDATE_CONTENT
    assert reload(recent).to_email == "nana@example.com"


def test_an_email_s_template_data_keeps_its_keys_without_their_values(db_url):
    content = {"type": "welcome", "subject": "Hi Nana", "templateData": {"name": "Nana", "n": 3}}
    job = finished_job(days_ago=45, content=content)

    run()

    assert reload(job).content == {
        "type": "welcome",
        "subject": None,
        "templateData": {"name": None, "n": None},
    }


def test_a_scrubbed_job_is_not_read_again_by_the_next_run(db_url):
    finished_job(days_ago=45, content=UPDATE_CONTENT)
    assert run().scrubbed == 1

    assert run().scrubbed == 0


def test_a_digest_s_window_survives_scrubbing():
    assert scrubbed_content({"window_end": "2026-01-01T00:00:00+00:00"}) == {
        "window_end": "2026-01-01T00:00:00+00:00"
    }


def test_retention_is_a_periodic_task_of_the_maintenance_queue():
    (entry,) = [entry for entry in ACTORS if entry[0] == Actor.APPLY_RETENTION]
    _, fn, queue, options = entry

    assert fn.__name__ == "apply_retention"
    assert queue == Queue.MAINTENANCE
    assert "periodic" in options
    assert Actor.APPLY_RETENTION in PERIODIC_ACTORS


def test_the_retention_actor_uses_the_configured_days(worker_app):
    # Given a job finished 10 days ago, and retention set to 7 days of jobs, 3 of content
    job = finished_job(days_ago=10)
    settings = replace(worker_app.context.settings, job_retention_days=7, content_retention_days=3)
    context = replace(worker_app.context, settings=settings)

    # When the tick runs
    apply_retention_actor(context)

    # Then the job is gone
    assert not exists(job)


def test_old_bulk_actions_go_with_their_records_in_batches_and_recent_or_running_ones_stay(db_url):
    # Given a bulk action past the retention with 25 records, a recent one and an old running one
    def action(days_ago: float, records: int, status: str = "done") -> BulkAction:
        asked = BulkAction.create(
            action="retry", requested_by="test", status=status,
            created_at=NOW - timedelta(days=days_ago),
        )  # fmt: skip
        for _ in range(records):
            BulkActionJob.create(action=asked.id, job_id=uuid.uuid4(), acted_at=asked.created_at)
        return asked

    old, recent, running = action(91, 25), action(10, 3), action(91, 2, status="running")

    # When retention runs with batches of 10
    run(batch_size=10)

    # Then the old one and its records are gone; the others are kept whole
    remaining = {a.id for a in BulkAction.select()}
    assert remaining == {recent.id, running.id}
    assert BulkActionJob.select().where(BulkActionJob.action == old.id).count() == 0
    assert BulkActionJob.select().count() == 5
