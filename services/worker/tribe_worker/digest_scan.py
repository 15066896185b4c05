"""The due-digest scan: every due schedule becomes one digest job per channel the recipient
chose for the group (email alone unless they chose others) and moves to its next run.

The scheduler runs it every minute. A schedule is due when it is active and its
``next_digest_scheduled`` has passed; in one transaction the scan writes a digest job for that
run (unique per schedule and run, so a repeated tick or a second scheduler process makes no
second job) and moves the schedule to its next run strictly after now. After downtime that is
one digest covering the whole gap, not one per missed run. Rows are locked while they are
handled (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the write lock), and the jobs are
handed to the broker after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus, NotificationType, Urgency
from tribe_shared.db import locking_transaction
from tribe_shared.models import DigestSchedule, NotificationJob, new_ids
from tribe_shared.outbox import JobRef, Outbox
from tribe_shared.schedule import next_run_after, parse_delivery_time
from tribe_shared.sql.digest_scan import DueSchedule, lock_due_schedules, move_schedules
from tribe_shared.sql.insert import insert_jobs_like

log = logging.getLogger(__name__)

#: Schedules handled per transaction.
BATCH_SIZE = 1000
#: A digest covers the updates created up to this long before its scan. An update's row carries
#: the time its request began and commits a moment later (a large group's fan-out takes most
#: of a second): a window ending at the scan itself could be read by the build before such an
#: update committed, and the next window starts after it, so it would be in no digest. Any
#: update the window leaves out is in the next digest.
WINDOW_SETTLE = timedelta(minutes=1)
#: The columns of a digest job that differ from run to run, in the order of a run's values;
#: every other column is the same for the whole batch.
RUN_FIELDS = (
    "id",
    "digest_schedule",
    "owner",
    "recipient",
    "group",
    "digest_period",
    "delivery_method",
)


def schedule_due_digests(
    outbox: Outbox,
    *,
    clock: Callable[[], datetime],
    batch_size: int = BATCH_SIZE,
    on_backlog: Callable[[], None] | None = None,
) -> int:
    """Turn every due schedule into a digest job, batch by batch; return how many jobs.

    ``on_backlog`` is called once if the first batch was full: more are due than one batch,
    and other workers can help (each takes batches the others have not locked).
    """
    total = 0
    while True:
        now = clock()
        with locking_transaction():
            due = lock_due_schedules(now, batch_size)
            job_ids, runs, moves, broken = _plan(due, now)
            refs = [JobRef(job_id, JobKind.DIGEST, Urgency.NORMAL, now) for job_id in job_ids]
            staged = outbox.stage(refs, now)
            template = _digest_job(now, queued=bool(staged.jobs))
            written = insert_jobs_like(template, RUN_FIELDS, runs, skip_conflicts=True)
            move_schedules(moves, now)
            if broken:
                DigestSchedule.update(is_active=False, updated_at=now).where(
                    DigestSchedule.id.in_(broken)
                ).execute()
        outbox.send(staged.only(written))
        if len(due) < batch_size:
            total += len(written)
            break
        if total == 0 and on_backlog is not None:
            on_backlog()
        total += len(written)
    if total:
        log.info("scheduled %d digest(s)", total)
    return total


def _digest_job(now: datetime, *, queued: bool) -> NotificationJob:
    """What every digest job of a batch shares."""
    return NotificationJob(
        kind=JobKind.DIGEST,
        status=JobStatus.QUEUED if queued else JobStatus.PENDING,
        notification_type=NotificationType.DIGEST,
        content={"window_end": (now - WINDOW_SETTLE).isoformat()},
        scheduled_for=now,
        created_at=now,
        queued_at=now if queued else None,
    )


def _plan(due: list[DueSchedule], now: datetime):
    """What each due schedule's run writes: its job's id, its job's values (in the order of
    :data:`RUN_FIELDS`, as database values) and its move (schedule id, next run); and the ids of
    the schedules that cannot run.

    Schedules of one shape (frequency, time, day, zone) share their next run: it is worked out
    once per shape and batch, and most schedules share a few popular shapes.
    """
    job_ids, runs, moves, broken = [], [], [], []
    new = iter(new_ids(sum(len(run.channels or (DeliveryMethod.EMAIL,)) for run in due)))
    next_runs: dict[tuple, datetime | Exception] = {}
    for run in due:
        shape = (run.frequency, run.delivery_time, run.delivery_day, run.timezone)
        if shape not in next_runs:
            next_runs[shape] = _next_run(now, *shape)
        next_run = next_runs[shape]
        if isinstance(next_run, Exception):
            # Stored before a rule changed or a zone was withdrawn: stop it, loudly, and go on.
            log.error("digest schedule %s deactivated, it cannot run: %s", run.id, next_run)
            broken.append(run.id)
            continue
        for channel in run.channels or (DeliveryMethod.EMAIL,):  # one job per channel
            job_id = next(new)
            job_ids.append(job_id)
            row_id = NotificationJob.id.db_value(job_id)
            values = (run.id, run.owner, run.recipient, run.group, run.period, str(channel))
            runs.append((row_id, *values))
        moves.append((run.id, next_run))
    return job_ids, runs, moves, broken


def _next_run(now, frequency, delivery_time, delivery_day, timezone) -> datetime | Exception:
    try:
        return next_run_after(
            now,
            frequency=frequency,
            delivery_time=parse_delivery_time(delivery_time),
            delivery_day=delivery_day,
            timezone=_zone(timezone),
        )
    except (ValueError, ZoneInfoNotFoundError) as exc:
        return exc


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    # ZoneInfo keeps only a few zones strongly; a tick over many zones would reload them.
    return ZoneInfo(name)
