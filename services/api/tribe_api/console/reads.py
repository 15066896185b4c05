"""What the console's pages read beyond the API's own queries, each bounded by an index.

The overview's refresh reads Redis once (one pipeline: queues, circuit, heartbeats, the
scheduler's last runs; :func:`tribe_api.system_state.read_broker_state`) and the jobs table
through indexes only (the last hour's outcomes by ``processed_at``, the oldest due pending job
by ``status, scheduled_for``): less than one ``/metrics`` scrape, which counts every job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import SQL, fn

from tribe_api.jobs import COUNT_CAP, capped
from tribe_shared import job_filters
from tribe_shared.contract import JobKind, JobStatus
from tribe_shared.db import is_postgres
from tribe_shared.models import DigestSchedule, NotificationJob, Recipient, Suppression

#: Jobs a console list shows at a time.
PAGE_SIZE = 50
#: The overview's chart: this many minutes back.
CHART_MINUTES = 60


@dataclass
class MinuteCounts:
    """Sends and failures per minute over the last :data:`CHART_MINUTES`, oldest first."""

    minutes: list[datetime] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return max([1, *self.sent, *self.failed])


def per_minute(now: datetime) -> MinuteCounts:
    """One indexed range read of the last hour's finished jobs, grouped by minute."""
    start = (now - timedelta(minutes=CHART_MINUTES - 1)).replace(second=0, microsecond=0)
    job = NotificationJob
    if is_postgres():
        minute = fn.date_trunc("minute", job.processed_at)
    else:
        minute = fn.strftime("%Y-%m-%d %H:%M:00", job.processed_at)
    rows = (
        job.select(minute.alias("minute"), job.status, fn.COUNT(job.id))
        .where(job.processed_at >= start, job.status.in_([JobStatus.SENT, JobStatus.FAILED]))
        .group_by(SQL("1"), job.status)
        .tuples()
    )
    counts: dict[tuple[str, str], int] = {}
    for at, status, jobs in rows:
        text = at if isinstance(at, str) else at.strftime("%Y-%m-%d %H:%M:00")
        counts[(text[:16], status)] = jobs
    chart = MinuteCounts()
    for i in range(CHART_MINUTES):
        at = start + timedelta(minutes=i)
        key = at.strftime("%Y-%m-%d %H:%M")
        chart.minutes.append(at)
        chart.sent.append(counts.get((key, JobStatus.SENT), 0))
        chart.failed.append(counts.get((key, JobStatus.FAILED), 0))
    return chart


@dataclass
class JobPage:
    jobs: list[NotificationJob]
    #: The matches, counted up to one past the API's cap.
    counted: int
    #: The keyset cursor of the next page (``created_at|id`` of the last job), or None.
    next_cursor: str | None

    @property
    def total_text(self) -> str:
        return f"{COUNT_CAP:,}+" if self.counted > COUNT_CAP else f"{self.counted:,}"


def job_page(filters: dict, cursor: str | None, descending: bool = True) -> JobPage:
    """A page of the jobs ``filters`` match, newest first, after ``cursor`` (keyset: every page
    reads only its own rows, in the order of the ``created_at, id`` indexes the API uses)."""
    jobs = job_filters.matching(NotificationJob.select(), filters)
    page = jobs
    if cursor:
        created_at, job_id = parse_cursor(cursor)
        page = job_filters.after_key(page, created_at, job_id, descending)
    order = (
        (NotificationJob.created_at.desc(), NotificationJob.id.desc())
        if descending
        else (NotificationJob.created_at, NotificationJob.id)
    )
    rows = list(page.order_by(*order).limit(PAGE_SIZE + 1))
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_cursor = f"{rows[-1].created_at.isoformat()}|{rows[-1].id}" if has_more else None
    return JobPage(rows, capped(jobs).count(), next_cursor)


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor's ``(created_at, id)``; ValueError for anything else."""
    created, _, job_id = cursor.partition("|")
    return datetime.fromisoformat(created), uuid.UUID(job_id)


@dataclass
class DigestsView:
    due_soon: list[DigestSchedule]
    paused: list[DigestSchedule]
    recent: list[NotificationJob]


def digests(now: datetime, limit: int = 50) -> DigestsView:
    """Schedules due within the hour (the scan's own index), paused ones, the last digests."""
    schedule = DigestSchedule
    with_recipient = schedule.select(schedule, Recipient).join(
        Recipient, on=(schedule.recipient == Recipient.id)
    )
    due = (
        with_recipient.where(
            schedule.is_active == True,  # noqa: E712 - SQL
            schedule.next_digest_scheduled <= now + timedelta(hours=1),
        )
        .order_by(schedule.next_digest_scheduled)
        .limit(limit)
    )
    paused = (
        with_recipient.where(schedule.is_active == False)  # noqa: E712 - SQL
        .order_by(schedule.updated_at.desc())
        .limit(limit)
    )
    recent = (
        NotificationJob.select()
        .where(
            NotificationJob.notification_type == "digest", NotificationJob.kind == JobKind.DIGEST
        )
        .order_by(NotificationJob.created_at.desc(), NotificationJob.id.desc())
        .limit(limit)
    )
    return DigestsView(list(due), list(paused), list(recent))


def suppressions(email: str | None, limit: int = 100) -> list[Suppression]:
    rows = Suppression.select().where(Suppression.suppressed_at.is_null(False))
    if email:
        rows = rows.where(Suppression.email == email.strip().lower())
    return list(rows.order_by(Suppression.suppressed_at.desc(), Suppression.email).limit(limit))
