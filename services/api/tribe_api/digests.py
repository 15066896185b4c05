"""Digest schedules: who gets a group's updates as a daily, weekly or monthly digest, and when.

A schedule belongs to the owner of its recipient and group (both must be the caller's; the
service role may use anyone's). Each create or change computes ``next_digest_scheduled`` again
from now, in the schedule's timezone; a paused schedule has none, and resuming starts from now,
so no backlog of old digests goes out. One exception keeps a run from being lost: a change to
an active schedule whose run is already due (the scheduler has not reached it yet) leaves that
run in place, and the scheduler computes the following one with the new settings.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import falcon
from peewee import IntegrityError

from tribe_api.access import owned, visible
from tribe_api.auth import Principal
from tribe_api.errors import Kind, ValidationFailed, unprocessable
from tribe_api.family import require_member
from tribe_api.jobs import cancel_waiting
from tribe_shared.db import database
from tribe_shared.models import DigestSchedule, Group, NotificationJob, Recipient
from tribe_shared.schedule import (
    delivery_day_problem,
    next_run_after,
    parse_delivery_time,
    stored_delivery_time,
)


def list_schedules(principal: Principal, filters: dict) -> list[DigestSchedule]:
    """The caller's schedules; a ``recipient_id`` or ``group_id`` not theirs is a 404."""
    if filters.get("recipient_id") is not None:
        owned(Recipient, filters["recipient_id"], principal, "recipient_id")
    if filters.get("group_id") is not None:
        owned(Group, filters["group_id"], principal, "group_id")
    query = visible(DigestSchedule, principal).order_by(
        DigestSchedule.created_at, DigestSchedule.id
    )
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(DigestSchedule, name) == value)
    return list(query)


def create_schedule(principal: Principal, fields: dict, now: datetime) -> DigestSchedule:
    """A new schedule for a recipient of one of the caller's groups; 409 if they have one."""
    recipient = owned(Recipient, fields["recipient_id"], principal, "recipient_id")
    group = owned(Group, fields["group_id"], principal, "group_id")
    require_member(recipient, group)
    _check_day(fields["frequency"], fields.get("delivery_day"))
    schedule = DigestSchedule(
        id=uuid.uuid4(),
        owner=recipient.owner_id,
        recipient=recipient.id,
        group=group.id,
        frequency=fields["frequency"],
        delivery_time=stored_delivery_time(fields["delivery_time"]),
        delivery_day=fields.get("delivery_day"),
        timezone=fields["timezone"],
        is_active=fields["is_active"],
        max_updates_per_digest=fields["max_updates_per_digest"],
        include_content_types=fields["include_content_types"],
        created_at=now,
        updated_at=now,
    )
    schedule.next_digest_scheduled = _next_run(schedule, now)
    try:
        with database.atomic():
            schedule.save(force_insert=True)
    except IntegrityError:
        raise _duplicate(recipient.id, group.id) from None
    return schedule


#: Fields a change may leave out but not set to null (only ``delivery_day`` can be cleared).
NOT_NULL = (
    "frequency",
    "delivery_time",
    "timezone",
    "is_active",
    "max_updates_per_digest",
    "include_content_types",
)


def update_schedule(schedule: DigestSchedule, changes: dict, now: datetime) -> DigestSchedule:
    """Apply the fields given and compute the next run again (see the module's note)."""
    was_due = (
        schedule.is_active
        and schedule.next_digest_scheduled is not None
        and schedule.next_digest_scheduled <= now
    )
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            raise unprocessable(name, f"{name} cannot be null")
    if "delivery_time" in changes:
        changes["delivery_time"] = stored_delivery_time(changes["delivery_time"])
    for name, value in changes.items():
        setattr(schedule, name, value)
    if any(name in changes for name in ("frequency", "delivery_day")):
        _check_day(schedule.frequency, schedule.delivery_day, status=falcon.HTTP_422)
    if not (was_due and schedule.is_active):
        schedule.next_digest_scheduled = _next_run(schedule, now)
    schedule.updated_at = now
    schedule.save()
    return schedule


def delete_schedule(schedule: DigestSchedule, now: datetime) -> int:
    """Delete the schedule and cancel its digests not yet started; return how many."""
    with database.atomic():
        cancelled = cancel_waiting(
            NotificationJob.digest_schedule == schedule.id, now, "The digest schedule was deleted"
        )
        schedule.delete_instance()
    return cancelled


def _next_run(schedule: DigestSchedule, now: datetime) -> datetime | None:
    if not schedule.is_active:
        return None
    return next_run_after(
        now,
        frequency=schedule.frequency,
        delivery_time=parse_delivery_time(schedule.delivery_time),
        delivery_day=schedule.delivery_day,
        timezone=schedule.timezone,
    )


def _check_day(frequency: str, day: int | None, *, status: str = falcon.HTTP_400) -> None:
    """``delivery_day``: none for daily, 1-7 for weekly (1 = Monday), 1-31 for monthly."""
    problem = delivery_day_problem(frequency, day)
    if problem is not None:
        error = {"field": "delivery_day", "kind": Kind.CONFLICT, "message": problem}
        raise ValidationFailed([error], status=status)


def _duplicate(recipient_id, group_id) -> falcon.HTTPConflict:
    return falcon.HTTPConflict(
        title="Conflict",
        description=(
            f"Recipient {recipient_id} already has a digest schedule for group {group_id}: "
            "change that one instead"
        ),
    )
