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

_DUE_FIELDS = (
    DigestSchedule.id,
    DigestSchedule.frequency,
    DigestSchedule.delivery_time,
    DigestSchedule.delivery_day,
    DigestSchedule.timezone,
    DigestSchedule.next_digest_scheduled,
)
#: Columns of a digest job taken from its schedule (``s``) or its run (``runs``); every other
#: column is the same for the whole batch.
_PER_ROW = {
    "id": "CAST(runs.job_id AS {uuid})",
    "owner": "s.owner_id",
    "recipient": "s.recipient_id",
    "group": "s.group_id",
    "digest_schedule": "s.id",
    "digest_period": "CAST(runs.period AS {timestamp})",
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
            due = list(query.tuples())
            runs, broken = _plan(due, now)
            written = _write(runs, now, queued=broker is not None)
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
    """(job id, schedule id, run, next run) for each due schedule; ids of those that cannot run."""
    runs, broken = [], []
    job_ids = iter(new_ids(len(due)))
    for schedule_id, frequency, delivery_time, delivery_day, timezone, period in due:
        try:
            next_run = next_run_after(
                now,
                frequency=frequency,
                delivery_time=_time(delivery_time),
                delivery_day=delivery_day,
                timezone=_zone(timezone),
            )
        except (ValueError, ZoneInfoNotFoundError) as exc:
            # Stored before a rule changed or a zone was withdrawn: stop it, loudly, and go on.
            log.error("digest schedule %s deactivated, it cannot run: %s", schedule_id, exc)
            broken.append(schedule_id)
            continue
        runs.append((next(job_ids), schedule_id, period, next_run))
    return runs, broken


def _write(runs: list[tuple], now: datetime, *, queued: bool) -> set[uuid.UUID]:
    """Write each run's digest job and move its schedule on; return the ids of the jobs written.

    Two statements for the whole batch. A run that already has its job (the unique key on
    schedule and run) gets none, but its schedule moves on all the same.
    """
    if not runs:
        return set()
    pg = is_postgres()
    types = {"uuid": "UUID" if pg else "TEXT", "timestamp": "TIMESTAMP" if pg else "TEXT"}
    param = database.param
    uuid_value, time_value = NotificationJob.id.db_value, NotificationJob.digest_period.db_value

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
            values.append(_PER_ROW[field.name].format(**types))
        else:
            values.append(param)
            constants.append(db_value(field, template.__data__.get(field.name)))
    rows = ", ".join([f"({param}, {param}, {param})"] * len(runs))
    params = []
    for job_id, schedule_id, period, _ in runs:
        params += [uuid_value(job_id), uuid_value(schedule_id), time_value(period)]
    cursor = database.execute_sql(
        f"WITH runs(job_id, schedule_id, period) AS (VALUES {rows}) "
        f'INSERT INTO "notification_jobs" ({", ".join(columns)}) '
        f"SELECT {', '.join(values)} FROM runs "
        f'JOIN "digest_schedules" AS s ON s.id = CAST(runs.schedule_id AS {types["uuid"]}) '
        'WHERE true ON CONFLICT DO NOTHING RETURNING "id"',
        [*params, *constants],
    )
    written = {NotificationJob.id.python_value(job_id) for (job_id,) in cursor.fetchall()}
    _move_on([(sid, next_run) for _, sid, _, next_run in runs], now)
    return written


def _move_on(next_runs: list[tuple[uuid.UUID, datetime]], now: datetime) -> None:
    """Set each schedule's next run in one statement (an UPDATE joined to a VALUES list)."""
    if not next_runs:
        return
    field = DigestSchedule.next_digest_scheduled
    id_type, time_type = ("UUID", "TIMESTAMP") if is_postgres() else ("TEXT", "TEXT")
    rows = ", ".join([f"({database.param}, {database.param})"] * len(next_runs))
    params = []
    for schedule_id, next_run in next_runs:
        params += [DigestSchedule.id.db_value(schedule_id), field.db_value(next_run)]
    database.execute_sql(
        f"WITH runs(id, next_run) AS (VALUES {rows}) "
        f'UPDATE "digest_schedules" SET "next_digest_scheduled" = '
        f'CAST(runs.next_run AS {time_type}), "updated_at" = {database.param} '
        f'FROM runs WHERE "digest_schedules"."id" = CAST(runs.id AS {id_type})',
        [*params, DigestSchedule.updated_at.db_value(now)],
    )


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    # ZoneInfo keeps only a few zones strongly; a tick over many zones would reload them.
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _time(text: str):
    return parse_delivery_time(text)
