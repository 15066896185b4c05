"""Digest schedules written straight into the database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tests.support.clocks import Clock
from tests.support.family import Family
from tribe_shared.models import DigestSchedule, NotificationJob, Update
from tribe_shared.outbox import Outbox
from tribe_shared.schedule import next_run_after, parse_delivery_time
from tribe_worker.digest_scan import schedule_due_digests


def schedule_for(
    fam: Family,
    created_at: datetime,
    *,
    frequency: str = "daily",
    delivery_time: str = "09:00:00",
    delivery_day: int | None = None,
    timezone: str = "UTC",
    **fields,
) -> DigestSchedule:
    """An active schedule of the family's recipient and group, created at ``created_at``, whose
    next run is the first one after that (as the API would store it)."""
    next_run = next_run_after(
        created_at,
        frequency=frequency,
        delivery_time=parse_delivery_time(delivery_time),
        delivery_day=delivery_day,
        timezone=timezone,
    )
    return DigestSchedule.create(
        id=uuid.uuid4(),
        owner=fam.owner.id,
        recipient=fam.recipient.id,
        group=fam.group.id,
        frequency=frequency,
        delivery_time=delivery_time,
        delivery_day=delivery_day,
        timezone=timezone,
        next_digest_scheduled=next_run,
        created_at=created_at,
        updated_at=created_at,
        **fields,
    )


def digest_jobs(schedule: DigestSchedule | None = None) -> list[NotificationJob]:
    """The digest jobs (of ``schedule``), oldest period first."""
    query = NotificationJob.select().where(NotificationJob.digest_schedule.is_null(False))
    if schedule is not None:
        query = query.where(NotificationJob.digest_schedule == schedule.id)
    return list(query.order_by(NotificationJob.digest_period))


def reload_schedule(schedule: DigestSchedule) -> DigestSchedule:
    return DigestSchedule.get_by_id(schedule.id)


def post_update(fam, at, *, content_type="text", title="News", body="", group=None):
    return Update.create(
        id=uuid.uuid4(),
        owner=fam.owner.id,
        group=(group or fam.group).id,
        content_type=content_type,
        title=title,
        body=body,
        created_at=at,
    )


def make_due(schedule: DigestSchedule, now) -> None:
    DigestSchedule.update(next_digest_scheduled=now - timedelta(minutes=1)).where(
        DigestSchedule.id == schedule.id
    ).execute()


def tick(schedule, broker, now):
    """The scheduler's tick at ``now`` for a schedule made due; return its new digest job."""
    before = {job.id for job in digest_jobs(schedule)}
    make_due(schedule, now)
    assert schedule_due_digests(Outbox(broker), clock=Clock(now)) == 1
    (job,) = [job for job in digest_jobs(schedule) if job.id not in before]
    return job
