"""Digest schedules written straight into the database, and a clock tests can move."""

from __future__ import annotations

import uuid
from datetime import datetime

from tests.family import Family
from tribe_shared.models import DigestSchedule, NotificationJob
from tribe_shared.schedule import next_run_after, parse_delivery_time


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
