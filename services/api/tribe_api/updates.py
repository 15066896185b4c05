"""Posting an update: the update and, in the same transaction, its fan-out — one notification
job per recipient of the group who should hear of it now (not muted, no active digest schedule
for the group) and per channel they chose for the group (email unless they chose others, each
with its address; email not to one who unsubscribed from the group's emails); the others get it
in their next digest. The jobs are handed
to the broker after the commit.

A group may have thousands of recipients: they are read in one query, their jobs written in a
few multi-row statements (:func:`tribe_shared.sql.insert_jobs_like`) and handed over in
pipelined batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tribe_api.access import owned
from tribe_api.auth import Principal
from tribe_shared.contract import (
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationContent,
    NotificationType,
    Urgency,
)
from tribe_shared.db import database
from tribe_shared.models import Group, NotificationJob, Update, new_ids
from tribe_shared.outbox import JobRef, Outbox
from tribe_shared.sql.fan_out import group_members
from tribe_shared.sql.insert import insert_jobs_like

#: The columns of an update's notification jobs that differ from job to job, in order.
PER_RECIPIENT = (
    "id",
    "owner",
    "recipient",
    "to_email",
    "status",
    "queued_at",
    "delivery_method",
)


@dataclass(frozen=True)
class FanOut:
    update: Update
    jobs: list[JobRef]
    in_digest: int
    muted: int
    unreachable: int
    #: Recipients who unsubscribed from the group's emails (an unsubscribe link).
    unsubscribed: int = 0


class UpdatePoster:
    """Posts an update and notifies, at once, every recipient who should hear of it now."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]):
        self._outbox = outbox
        self._clock = clock

    def post(self, principal: Principal, fields: dict, request_id: str | None = None) -> FanOut:
        group = owned(Group, fields["group_id"], principal, "group_id")
        now = self._clock()
        update = Update(
            id=uuid.uuid4(),
            owner=group.owner_id,
            group=group.id,
            content_type=fields["content_type"],
            title=fields.get("title"),
            body=fields.get("body") or "",
            media_urls=[str(url) for url in fields.get("media_urls") or []],
            created_at=now,
        )
        in_digest = muted = unreachable = unsubscribed = 0
        notified = []  # (member, channel): one job each
        for member in group_members(group.id, now):
            channels = member.channels or [DeliveryMethod.EMAIL]
            if member.unsubscribed and channels == [DeliveryMethod.EMAIL]:
                unsubscribed += 1
                continue
            if member.in_digest:
                in_digest += 1
                continue
            if member.muted:
                muted += 1
                continue
            for channel in channels:
                if channel == DeliveryMethod.EMAIL and member.unsubscribed:
                    unsubscribed += 1
                elif not (member.email if channel == DeliveryMethod.EMAIL else member.phone):
                    unreachable += 1
                else:
                    notified.append((member, channel))
        jobs = [
            JobRef(job_id, JobKind.NOTIFICATION, Urgency.NORMAL, now, update_id=update.id)
            for job_id in new_ids(len(notified))
        ]
        template = _notification(principal, update, fields.get("child_name"), now)
        template.request_id = request_id
        with database.atomic():
            update.save(force_insert=True)
            staged = self._outbox.stage(jobs, now)
            rows = [
                (
                    NotificationJob.id.db_value(job.id),
                    member.owner,
                    member.recipient,
                    member.email if channel == DeliveryMethod.EMAIL else None,
                    job.status,
                    NotificationJob.queued_at.db_value(job.queued_at),
                    str(channel),
                )
                for job, (member, channel) in zip(jobs, notified, strict=True)
            ]
            insert_jobs_like(template, PER_RECIPIENT, rows)
        self._outbox.send(staged)
        return FanOut(update, jobs, in_digest, muted, unreachable, unsubscribed)


def _notification(principal: Principal, update: Update, child_name, now) -> NotificationJob:
    """What every notification job of an update shares."""
    content = NotificationContent(
        title=update.title,
        body=update.body,
        child_name=child_name,
        content_type=update.content_type,
        media_urls=update.media_urls,
        update_id=str(update.id),
    )
    return NotificationJob(
        kind=JobKind.NOTIFICATION,
        status=JobStatus.PENDING,
        created_by=principal.user_id,
        group=update.group_id,
        family_update=update.id,
        notification_type=NotificationType.IMMEDIATE,
        urgency=Urgency.NORMAL,
        delivery_method=DeliveryMethod.EMAIL,
        content=content,
        scheduled_for=now,
        created_at=now,
    )
