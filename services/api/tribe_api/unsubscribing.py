"""Leaving and rejoining a group's emails, and leaving all Tribe email, as a recipient does from
an unsubscribe link (or SendGrid reports from its own group unsubscribe).

Leaving a group's emails records a :class:`GroupUnsubscribe` (the worker skips every update and
digest email of the group to that recipient while it stands: ``unsubscribed``) and pauses the
recipient's active digest schedule for the group, remembered so that the undo resumes it (from
now: no backlog). Leaving all Tribe email suppresses the recipient's address (``unsubscribed``);
the undo lifts only a suppression made that way, never one for a bounce or a spam report.
Each is idempotent: doing it twice is doing it once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tribe_shared.contract import SuppressionReason
from tribe_shared.db import database
from tribe_shared.models import (
    DigestSchedule,
    Group,
    GroupUnsubscribe,
    NotificationJob,
    Recipient,
    Suppression,
)
from tribe_shared.schedule import next_run_after, parse_delivery_time
from tribe_shared.sql.events import SuppressRow, suppress

#: The ``source`` of a suppression made from an unsubscribe link.
LINK_SOURCE = "unsubscribe"


@dataclass(frozen=True)
class Standing:
    """Where a recipient stands with a group's emails and with Tribe's."""

    recipient: Recipient
    group: Group | None
    unsubscribed: bool
    suppressed_reason: str | None

    @property
    def family(self) -> str:
        """Who the emails come from, as the pages say it."""
        if self.group is None:
            return "your family on Tribe"
        return self.group.family_name or f"the {self.group.name} group"


def standing(recipient_id: uuid.UUID, group_id: uuid.UUID | None) -> Standing | None:
    """The recipient's standing; None when the recipient no longer exists."""
    recipient = Recipient.get_or_none(Recipient.id == recipient_id)
    if recipient is None:
        return None
    group = Group.get_or_none(Group.id == group_id) if group_id else None
    unsubscribed = group is not None and (
        GroupUnsubscribe.select()
        .where(GroupUnsubscribe.recipient == recipient.id, GroupUnsubscribe.group == group.id)
        .exists()
    )
    suppression = None
    if recipient.email:
        suppression = Suppression.get_or_none(
            Suppression.email == recipient.email.strip().lower(),
            Suppression.suppressed_at.is_null(False),
        )
    return Standing(recipient, group, unsubscribed, suppression and suppression.reason)


def leave_group(recipient_id: uuid.UUID, group_id: uuid.UUID, source: str, now: datetime) -> None:
    """No more of the group's emails to the recipient; their digest of it paused."""
    with database.atomic():
        schedule = DigestSchedule.get_or_none(
            DigestSchedule.recipient == recipient_id,
            DigestSchedule.group == group_id,
            DigestSchedule.is_active == True,  # noqa: E712
        )
        inserted = (
            GroupUnsubscribe.insert(
                id=uuid.uuid4(),
                recipient=recipient_id,
                group=group_id,
                paused_schedule=schedule.id if schedule else None,
                source=source,
                created_at=now,
            )
            .on_conflict_ignore()
            .execute()
        )
        if inserted and schedule is not None:
            DigestSchedule.update(
                is_active=False, next_digest_scheduled=None, updated_at=now
            ).where(DigestSchedule.id == schedule.id).execute()


def rejoin_group(recipient_id: uuid.UUID, group_id: uuid.UUID, now: datetime) -> None:
    """Undo :func:`leave_group`: the group's emails again, the paused digest resumed from now."""
    with database.atomic():
        left = GroupUnsubscribe.get_or_none(
            GroupUnsubscribe.recipient == recipient_id, GroupUnsubscribe.group == group_id
        )
        if left is None:
            return
        left.delete_instance()
        schedule = left.paused_schedule_id and DigestSchedule.get_or_none(
            DigestSchedule.id == left.paused_schedule_id
        )
        if schedule and not schedule.is_active:
            next_run = next_run_after(
                now,
                frequency=schedule.frequency,
                delivery_time=parse_delivery_time(schedule.delivery_time),
                delivery_day=schedule.delivery_day,
                timezone=schedule.timezone,
            )
            DigestSchedule.update(
                is_active=True, next_digest_scheduled=next_run, updated_at=now
            ).where(DigestSchedule.id == schedule.id).execute()


def leave_all(recipient: Recipient, now: datetime) -> bool:
    """Suppress the recipient's address (no Tribe email at all); False if they have none."""
    if not recipient.email:
        return False
    email = recipient.email.strip().lower()
    row = SuppressRow(
        email, SuppressionReason.UNSUBSCRIBED, "from an unsubscribe link", LINK_SOURCE
    )
    suppress([row], now)
    return True


def rejoin_all(recipient: Recipient) -> None:
    """Undo :func:`leave_all` (only a suppression made by an unsubscribe link is lifted)."""
    if recipient.email:
        Suppression.delete().where(
            Suppression.email == recipient.email.strip().lower(),
            Suppression.reason == SuppressionReason.UNSUBSCRIBED,
            Suppression.source == LINK_SOURCE,
        ).execute()


def on_provider_group_event(job_id: uuid.UUID, now: datetime, leaving: bool) -> None:
    """SendGrid's own ``group_unsubscribe`` / ``group_resubscribe`` for an email of a job:
    its recipient leaves (or rejoins) the job's group's emails."""
    job = (
        NotificationJob.select(NotificationJob.recipient, NotificationJob.group)
        .where(NotificationJob.id == job_id)
        .first()
    )
    if job is None or job.recipient_id is None or job.group_id is None:
        return
    if leaving:
        leave_group(job.recipient_id, job.group_id, "sendgrid", now)
    else:
        rejoin_group(job.recipient_id, job.group_id, now)
