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
from datetime import datetime
from zoneinfo import ZoneInfoNotFoundError

import dramatiq

from tribe_shared.broker import send_staged, stage_jobs
from tribe_shared.contract import JobKind, JobStatus, NotificationType
from tribe_shared.db import database, is_postgres, locking_transaction
from tribe_shared.models import DigestSchedule, NotificationJob, utcnow
from tribe_shared.schedule import next_run_after, parse_delivery_time

log = logging.getLogger(__name__)

#: Schedules handled per transaction.
BATCH_SIZE = 1000

_DUE_FIELDS = (
    DigestSchedule.id,
    DigestSchedule.owner,
    DigestSchedule.recipient,
    DigestSchedule.group,
    DigestSchedule.frequency,
    DigestSchedule.delivery_time,
    DigestSchedule.delivery_day,
    DigestSchedule.timezone,
    DigestSchedule.next_digest_scheduled,
)


def schedule_due_digests(
    broker: dramatiq.Broker | None,
    *,
    clock: Callable[[], datetime] = utcnow,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Turn every due schedule into a digest job, batch by batch; return how many jobs."""
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
            schedules = list(query)
            jobs, next_runs, broken = _plan(schedules, now)
            _move_on(next_runs, now)
            if broken:
                DigestSchedule.update(is_active=False, updated_at=now).where(
                    DigestSchedule.id.in_(broken)
                ).execute()
            staged = stage_jobs(broker, jobs, clock=clock, skip_conflicts=True)
        send_staged(staged)
        total += len(staged.written)
        if len(schedules) < batch_size:
            break
    if total:
        log.info("scheduled %d digest(s)", total)
    return total


def _plan(schedules: list[DigestSchedule], now: datetime):
    """The digest job and the next run of each schedule; the ids of schedules that cannot run."""
    jobs, next_runs, broken = [], [], []
    window_end = now.isoformat()
    for schedule in schedules:
        try:
            next_run = next_run_after(
                now,
                frequency=schedule.frequency,
                delivery_time=parse_delivery_time(schedule.delivery_time),
                delivery_day=schedule.delivery_day,
                timezone=schedule.timezone,
            )
        except (ValueError, ZoneInfoNotFoundError) as exc:
            # Stored before a rule changed or a zone was withdrawn: stop it, loudly, and go on.
            log.error("digest schedule %s deactivated, it cannot run: %s", schedule.id, exc)
            broken.append(schedule.id)
            continue
        next_runs.append((schedule.id, next_run))
        jobs.append(
            NotificationJob(
                id=uuid.uuid4(),
                kind=JobKind.DIGEST,
                status=JobStatus.PENDING,
                owner=schedule.owner_id,
                recipient=schedule.recipient_id,
                group=schedule.group_id,
                digest_schedule=schedule.id,
                digest_period=schedule.next_digest_scheduled,
                notification_type=NotificationType.DIGEST,
                content={"frequency": schedule.frequency, "window_end": window_end},
                scheduled_for=now,
                created_at=now,
            )
        )
    return jobs, next_runs, broken


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
