"""The due-digest scan: every due schedule becomes one digest job and moves to its next run.

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
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dramatiq

from tribe_shared.broker import JobRef, send_queued
from tribe_shared.contract import JobKind, JobStatus, NotificationType, Urgency
from tribe_shared.db import database, is_postgres, locking_transaction
from tribe_shared.models import DigestSchedule, NotificationJob, db_value, new_ids, utcnow
from tribe_shared.schedule import next_run_after, parse_delivery_time

log = logging.getLogger(__name__)

#: Schedules handled per transaction.
BATCH_SIZE = 1000
#: A digest covers the updates created up to this long before its scan. An update's row carries
#: the time its request began and commits a moment later (a large group's fan-out takes most
#: of a second): a window ending at the scan itself could be read by the build before such an
#: update committed, and the next window starts after it, so it would be in no digest. Any
#: update the window leaves out is in the next digest.
WINDOW_SETTLE = timedelta(minutes=1)

#: What the scan reads of a due schedule: its references (as text: they only go back into the
#: writes, and a driver's UUID objects cost more to make and to send back than the text),
#: the shape of its runs, its due run.
_DUE_FIELDS = (
    DigestSchedule.id.cast("TEXT"),
    DigestSchedule.owner.cast("TEXT"),
    DigestSchedule.recipient.cast("TEXT"),
    DigestSchedule.group.cast("TEXT"),
    DigestSchedule.frequency,
    DigestSchedule.delivery_time,
    DigestSchedule.delivery_day,
    DigestSchedule.timezone,
    DigestSchedule.next_digest_scheduled,
)
#: The columns of a digest job that differ from run to run, in the order of a run's values
#: (with their SQL types); every other column is the same for the whole batch.
_PER_ROW = {
    "id": "uuid",
    "digest_schedule": "uuid",
    "owner": "uuid",
    "recipient": "uuid",
    "group": "uuid",
    "digest_period": "timestamp",
}


def schedule_due_digests(
    broker: dramatiq.Broker | None,
    *,
    clock: Callable[[], datetime] = utcnow,
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
            query = (
                DigestSchedule.select(*_DUE_FIELDS)
                .where(
                    DigestSchedule.is_active == True,  # noqa: E712
                    DigestSchedule.next_digest_scheduled <= now,
                )
                .order_by(DigestSchedule.next_digest_scheduled)
                .limit(batch_size)
            )
            if is_postgres():
                query = query.for_update(skip_locked=True)
            # As the database returns them: the ids and the due run go back into the writes
            # unchanged, and the shape is plain text and numbers.
            due = database.execute_sql(*query.sql()).fetchall()
            jobs, moves, broken = _plan(due, now)
            written = _write(jobs, now, queued=broker is not None)
            _move_on(moves, now)
            if broken:
                DigestSchedule.update(is_active=False, updated_at=now).where(
                    DigestSchedule.id.in_(broken)
                ).execute()
        if broker is not None and written:
            refs = [JobRef(job_id, JobKind.DIGEST, Urgency.NORMAL, now) for job_id in written]
            send_queued(broker, refs, now)
        if len(due) < batch_size:
            total += len(written)
            break
        if total == 0 and on_backlog is not None:
            on_backlog()
        total += len(written)
    if total:
        log.info("scheduled %d digest(s)", total)
    return total


def _plan(due: list[tuple], now: datetime):
    """What each due schedule's run writes: its job (job id, schedule id, owner, recipient,
    group, due run, as database values) and its move (schedule id, next run); and the ids of
    the schedules that cannot run.

    Schedules of one shape (frequency, time, day, zone) share their next run: it is worked out
    once per shape and batch, and most schedules share a few popular shapes.
    """
    jobs, moves, broken = [], [], []
    job_ids = iter(new_ids(len(due)))
    next_runs: dict[tuple, datetime | Exception] = {}
    for schedule_id, owner, recipient, group, *shape, period in due:
        key = tuple(shape)
        if key not in next_runs:
            next_runs[key] = _next_run(now, *key)
        next_run = next_runs[key]
        if isinstance(next_run, Exception):
            # Stored before a rule changed or a zone was withdrawn: stop it, loudly, and go on.
            schedule = DigestSchedule.id.python_value(schedule_id)
            log.error("digest schedule %s deactivated, it cannot run: %s", schedule, next_run)
            broken.append(schedule_id)
            continue
        job_id = NotificationJob.id.db_value(next(job_ids))
        jobs.append((job_id, schedule_id, owner, recipient, group, period))
        moves.append((schedule_id, next_run))
    return jobs, moves, broken


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


def _write(jobs: list[tuple], now: datetime, *, queued: bool) -> set[uuid.UUID]:
    """Write the digest job of each run (values in the order of :data:`_PER_ROW`) in one
    statement; return the ids of those written.

    A run that already has its job (the unique key on schedule and run) gets none.
    """
    if not jobs:
        return set()
    param = database.param
    template = NotificationJob(
        kind=JobKind.DIGEST,
        status=JobStatus.QUEUED if queued else JobStatus.PENDING,
        notification_type=NotificationType.DIGEST,
        content={"window_end": (now - WINDOW_SETTLE).isoformat()},
        scheduled_for=now,
        created_at=now,
        queued_at=now if queued else None,
    )
    columns, values, constants = [], [], []
    for field in NotificationJob._meta.sorted_fields:
        columns.append(f'"{field.column_name}"')
        if field.name in _PER_ROW:
            values.append(_cast(f"runs.{field.column_name}", _PER_ROW[field.name]))
        else:
            values.append(param)
            constants.append(db_value(field, template.__data__.get(field.name)))
    names = ", ".join(getattr(NotificationJob, name).column_name for name in _PER_ROW)
    row = "(" + ", ".join([param] * len(_PER_ROW)) + ")"
    cursor = database.execute_sql(
        f"WITH runs({names}) AS (VALUES {', '.join([row] * len(jobs))}) "
        f'INSERT INTO "notification_jobs" ({", ".join(columns)}) '
        f"SELECT {', '.join(values)} FROM runs "
        'WHERE true ON CONFLICT DO NOTHING RETURNING "id"',
        [value for job in jobs for value in job] + constants,
    )
    return {NotificationJob.id.python_value(job_id) for (job_id,) in cursor.fetchall()}


def _move_on(next_runs: list[tuple], now: datetime) -> None:
    """Set each schedule's next run in one statement (an UPDATE joined to a VALUES list)."""
    if not next_runs:
        return
    field = DigestSchedule.next_digest_scheduled
    rows = ", ".join([f"({database.param}, {database.param})"] * len(next_runs))
    params = []
    for schedule_id, next_run in next_runs:
        params += [schedule_id, field.db_value(next_run)]
    database.execute_sql(
        f"WITH runs(id, next_run) AS (VALUES {rows}) "
        f'UPDATE "digest_schedules" SET "next_digest_scheduled" = '
        f'{_cast("runs.next_run", "timestamp")}, "updated_at" = {database.param} '
        f'FROM runs WHERE "digest_schedules"."id" = {_cast("runs.id", "uuid")}',
        [*params, DigestSchedule.updated_at.db_value(now)],
    )


def _cast(expression: str, kind: str) -> str:
    """A VALUES column as the ``kind`` (uuid, timestamp) it holds: SQLite keeps both as text."""
    return f"CAST({expression} AS {kind.upper() if is_postgres() else 'TEXT'})"


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    # ZoneInfo keeps only a few zones strongly; a tick over many zones would reload them.
    return ZoneInfo(name)
