"""The read behind an update's fan-out: a group's recipients and whether each hears of it now."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from peewee import JOIN

from tribe_shared.db import database
from tribe_shared.models import (
    DigestSchedule,
    GroupMembership,
    GroupUnsubscribe,
    Recipient,
)

# --- an update's fan-out --------------------------------------------------------------------


class Member(NamedTuple):
    """A recipient of a group, as an update's fan-out reads them. Ids and the address are as
    the database gave them, to be written back unchanged."""

    owner: object
    recipient: object
    email: str | None
    in_digest: bool
    muted: bool
    #: Unsubscribed from the group's emails (an unsubscribe link): no email job.
    unsubscribed: bool
    #: The phone number, and the channels chosen for the group (None: email alone).
    phone: str | None = None
    channels: object = None


def group_members(group_id: UUID, now: datetime) -> list[Member]:
    """Each recipient of the group, with whether they are on an active digest for it, whether
    they are muted at ``now`` and whether they unsubscribed from its emails: one query."""
    schedule = (
        (DigestSchedule.recipient == GroupMembership.recipient)
        & (DigestSchedule.group == GroupMembership.group)
        & (DigestSchedule.is_active == True)  # noqa: E712
    )
    unsubscribed = (GroupUnsubscribe.recipient == GroupMembership.recipient) & (
        GroupUnsubscribe.group == GroupMembership.group
    )
    query = (
        GroupMembership.select(
            Recipient.owner,
            Recipient.id,
            Recipient.email,
            DigestSchedule.id.is_null(False),
            Recipient.muted_until.is_null(False) & (Recipient.muted_until > now),
            GroupUnsubscribe.id.is_null(False),
            Recipient.phone,
            GroupMembership.channels,
        )
        .join(Recipient, on=(GroupMembership.recipient == Recipient.id))
        .join(DigestSchedule, JOIN.LEFT_OUTER, on=schedule)
        .join(GroupUnsubscribe, JOIN.LEFT_OUTER, on=unsubscribed)
        .where(GroupMembership.group == group_id)
    )
    return [
        Member(*row[:7], GroupMembership.channels.python_value(row[7]))
        for row in database.execute(query)
    ]
