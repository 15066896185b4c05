"""Retention: finished jobs are deleted after ``JOB_RETENTION_DAYS`` and lose their personal
content after ``CONTENT_RETENTION_DAYS``, so a table a year old is as large as one of three months.

Both run in bounded batches, each its own short transaction, oldest first through an index:

- **delete**: the finished jobs (``sent``, ``failed``, ``cancelled``, ``skipped``) processed
  before the cutoff, found through the ``processed_at, id`` index, and every row that belongs to
  them (:data:`JOB_CHILDREN`: their delivery logs) before them;
- **scrub**: the finished jobs processed before the content cutoff and not yet scrubbed, found
  through the ``processed_at`` index of unscrubbed jobs (migration 0010): the address goes and
  the content keeps its keys with their personal values blanked (:func:`scrubbed_content`); the
  row stays, with its status, kind, times and outcome, for history and the metrics.

The first answers kept for ``Idempotency-Key`` retries (issue #15) are deleted once they expire
(24 hours: ``expires_at``), in batches through their ``expires_at`` index, by the same run.

Waiting and running jobs (``pending``, ``queued``, ``processing``) are never touched: they have
no ``processed_at`` and their status is checked again by the statement that changes rows. No
finished job is needed later: a digest waits only for an *unfinished* earlier digest of its
schedule (:func:`tribe_worker.digest_build._earlier_unfinished`), and a schedule's next run is
kept on the schedule, not in old jobs. On PostgreSQL a batch locks its rows ``SKIP LOCKED``, so
two retention runs (two scheduler processes, a slow tick and the next) share the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import fn

from tribe_shared.contract import JobStatus
from tribe_shared.db import database, is_postgres
from tribe_shared.models import (
    BulkAction,
    BulkActionJob,
    DeliveryLog,
    IdempotencyKey,
    NotificationJob,
)
from tribe_shared.sql.retention import scrub_jobs

log = logging.getLogger(__name__)

#: The statuses a job ends in; only these are ever deleted or scrubbed.
FINISHED = (JobStatus.SENT, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)
#: Jobs per batch: one short transaction each (a few milliseconds of locks).
BATCH_SIZE = 1000
#: One run stops starting batches after this long; the next minute's run goes on.
RUN_SECONDS = 40.0

#: Rows that belong to a job and are deleted with it, before it: (model, its reference to the
#: job). Provider events (issue #14) join them with one line here, e.g.
#: ``(EmailEvent, EmailEvent.job)``; whether their foreign key cascades or not, retention
#: deletes them in the job's batch, through their index on the job.
JOB_CHILDREN = ((DeliveryLog, DeliveryLog.job),)

#: The keys of a job's content that hold personal text (an update's, a notification's, an
#: email's subject, a digest's AI summary); blanked to None. ``templateData`` keeps its keys with
#: None values, and ``media_urls`` becomes empty.
PERSONAL_TEXT = ("title", "body", "text", "subject", "child_name", "summary")


@dataclass(frozen=True)
class RetentionRun:
    """What one run did: jobs deleted (their children with them), jobs scrubbed, and expired
    idempotency keys deleted."""

    deleted: int = 0
    scrubbed: int = 0
    keys: int = 0


def apply_retention(
    *,
    job_days: int,
    content_days: int,
    clock: Callable[[], datetime],
    batch_size: int = BATCH_SIZE,
    run_seconds: float = RUN_SECONDS,
    pause: float = 0.0,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RetentionRun:
    """Delete what is older than ``job_days``, then scrub what is older than ``content_days``,
    batch by batch until nothing is left or ``run_seconds`` have passed.

    ``pause`` seconds between two batches leave the database to other work (the bench measures
    what the accepting path sees with and without it).
    """
    now = clock()
    ends = monotonic() + run_seconds

    def batches(step: Callable[[], int]) -> int:
        total = 0
        while monotonic() < ends:
            done = step()
            total += done
            if done < batch_size:
                break
            if pause:
                sleep(pause)
        return total

    deleted = batches(lambda: delete_expired_batch(now - timedelta(days=job_days), batch_size))
    batches(lambda: delete_expired_actions_batch(now - timedelta(days=job_days), batch_size))
    scrubbed = batches(lambda: scrub_batch(now - timedelta(days=content_days), now, batch_size))
    keys = batches(lambda: delete_expired_keys(now, batch_size))
    if deleted or scrubbed or keys:
        log.info(
            "retention: %d job(s) deleted, %d scrubbed, %d idempotency key(s) deleted",
            deleted,
            scrubbed,
            keys,
            extra={"event": "retention", "deleted": deleted, "scrubbed": scrubbed, "keys": keys},
        )
    return RetentionRun(deleted, scrubbed, keys)


def _finished_before(cutoff: datetime):
    return (NotificationJob.processed_at < cutoff) & NotificationJob.status.in_(list(FINISHED))


def expired_jobs(cutoff: datetime, limit: int):
    """The oldest ``limit`` finished jobs processed before ``cutoff`` (``processed_at, id``
    index), locked for the caller's transaction (PostgreSQL: skipping rows locked elsewhere)."""
    job = NotificationJob
    query = (
        job.select(job.id)
        .where(_finished_before(cutoff))
        .order_by(job.processed_at, job.id)
        .limit(limit)
    )
    return query.for_update(skip_locked=True) if is_postgres() else query


def unscrubbed_jobs(cutoff: datetime, limit: int):
    """The oldest ``limit`` finished jobs processed before ``cutoff`` and not yet scrubbed
    (the ``processed_at`` index of unscrubbed jobs), locked as :func:`expired_jobs` are."""
    job = NotificationJob
    query = (
        job.select(job.id, job.content)
        .where(_finished_before(cutoff), job.scrubbed_at.is_null())
        .order_by(job.processed_at)
        .limit(limit)
    )
    return query.for_update(skip_locked=True) if is_postgres() else query


def delete_expired_batch(cutoff: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete up to ``batch_size`` finished jobs processed before ``cutoff``, oldest first, and
    their rows of :data:`JOB_CHILDREN`; return how many jobs."""
    job = NotificationJob
    with database.atomic():
        ids = [row.id for row in expired_jobs(cutoff, batch_size)]
        if not ids:
            return 0
        for model, reference in JOB_CHILDREN:
            model.delete().where(reference.in_(ids)).execute()
        return job.delete().where(job.id.in_(ids), _finished_before(cutoff)).execute()


def delete_expired_actions_batch(cutoff: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete up to ``batch_size`` records of the bulk actions finished and asked for before
    ``cutoff`` (the jobs they name are gone by then), then those actions once they have none
    left; return the rows deleted."""
    expired = BulkAction.select(BulkAction.id).where(
        BulkAction.created_at < cutoff, BulkAction.status != "running"
    )
    with database.atomic():
        records = [
            row.id
            for row in BulkActionJob.select(BulkActionJob.id)
            .where(BulkActionJob.action.in_(expired))
            .limit(batch_size)
        ]
        deleted = BulkActionJob.delete().where(BulkActionJob.id.in_(records)).execute()
        if deleted < batch_size:
            emptied = expired.where(
                ~fn.EXISTS(BulkActionJob.select().where(BulkActionJob.action == BulkAction.id))
            )
            deleted += BulkAction.delete().where(BulkAction.id.in_(emptied)).execute()
    return deleted


def scrub_batch(cutoff: datetime, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Blank the address and personal content of up to ``batch_size`` finished jobs processed
    before ``cutoff`` and not yet scrubbed, oldest first; return how many."""
    with database.atomic():
        rows = [
            (row.id, scrubbed_content(row.content)) for row in unscrubbed_jobs(cutoff, batch_size)
        ]
        if not rows:
            return 0
        return scrub_jobs(rows, now, finished=[status.value for status in FINISHED])


def delete_expired_keys(now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete up to ``batch_size`` idempotency keys expired by ``now``, oldest first (their
    ``expires_at`` index); return how many. An expired key is never replayed, so deleting it
    changes no answer."""
    key = IdempotencyKey
    with database.atomic():
        query = key.select(key.id).where(key.expires_at <= now).order_by(key.expires_at)
        query = query.limit(batch_size)
        if is_postgres():
            query = query.for_update(skip_locked=True)
        ids = [row.id for row in query]
        if not ids:
            return 0
        return key.delete().where(key.id.in_(ids), key.expires_at <= now).execute()


def scrubbed_content(content: dict | None) -> dict:
    """``content`` with the same keys and no personal values: :data:`PERSONAL_TEXT` None,
    ``templateData``'s values None, ``media_urls`` empty; a digest's window stays."""
    scrubbed = dict(content or {})
    for key in PERSONAL_TEXT:
        if key in scrubbed:
            scrubbed[key] = None
    if isinstance(scrubbed.get("templateData"), dict):
        scrubbed["templateData"] = dict.fromkeys(scrubbed["templateData"])
    if "media_urls" in scrubbed:
        scrubbed["media_urls"] = []
    return scrubbed
