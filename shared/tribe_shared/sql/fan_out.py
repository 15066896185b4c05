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


def group_members(group_id: UUID, now: datetime) -> list[Member]:
    """Each recipient of the group, with whether they are on an active digest for it and
    whether they are muted at ``now``: one query."""
    schedule = (
        (DigestSchedule.recipient == GroupMembership.recipient)
        & (DigestSchedule.group == GroupMembership.group)
        & (DigestSchedule.is_active == True)  # noqa: E712
    )
    query = (
        GroupMembership.select(
            Recipient.owner,
            Recipient.id,
            Recipient.email,
            DigestSchedule.id.is_null(False),
            Recipient.muted_until.is_null(False) & (Recipient.muted_until > now),
        )
        .join(Recipient, on=(GroupMembership.recipient == Recipient.id))
        .join(DigestSchedule, JOIN.LEFT_OUTER, on=schedule)
        .where(GroupMembership.group == group_id)
    )
    return [Member(*row) for row in database.execute(query)]
