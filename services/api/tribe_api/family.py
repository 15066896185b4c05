"""The family behind notifications: groups and their recipients.

Every read and write is scoped to the caller (:mod:`tribe_api.access`): the service role sees
everything; another user's object is a 404 that reveals nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import falcon
from peewee import JOIN, fn

from tribe_api.access import not_found, owned, owning_user, visible
from tribe_api.auth import Principal
from tribe_api.errors import Kind, ValidationFailed, unprocessable
from tribe_api.jobs import cancel_waiting
from tribe_shared.db import database
from tribe_shared.models import (
    Group,
    GroupMembership,
    GroupUnsubscribe,
    NotificationJob,
    Recipient,
    Suppression,
)


def require_member(recipient: Recipient, group: Group) -> None:
    """A 422 unless ``recipient`` is in ``group``."""
    member = GroupMembership.select().where(
        GroupMembership.group == group.id, GroupMembership.recipient == recipient.id
    )
    if not member.exists():
        raise unprocessable("recipient_id", "The recipient is not a member of the group")


def unreachable(status: str) -> ValidationFailed:
    """A recipient with neither an email address nor a phone number: both fields are at fault."""
    message = "A recipient needs an email address or a phone number"
    fields = [
        {"field": field, "kind": Kind.MISSING, "message": message} for field in ("email", "phone")
    ]
    return ValidationFailed(fields, status=status)


# --- groups --------------------------------------------------------------------------------


def list_groups(principal: Principal) -> list[tuple[Group, int]]:
    """The caller's groups, oldest first, each with its number of recipients."""
    query = _counted(visible(Group, principal)).order_by(Group.created_at, Group.id)
    return [(group, group.recipient_count) for group in query]


def get_group(principal: Principal, group_id: uuid.UUID) -> tuple[Group, int]:
    """One of the caller's groups with its number of recipients (another's is a 404)."""
    group = owned(Group, group_id, principal)
    (counted,) = _counted(Group.select().where(Group.id == group.id))
    return counted, counted.recipient_count


def _counted(groups):
    count = fn.COUNT(GroupMembership.id)
    return (
        groups.select_extend(count.alias("recipient_count"))
        .join(GroupMembership, JOIN.LEFT_OUTER, on=(GroupMembership.group == Group.id))
        .group_by(Group.id)
    )


def create_group(
    principal: Principal,
    name: str,
    now: datetime,
    *,
    family_name: str | None = None,
    ai_summary: bool = False,
) -> Group:
    owner = owning_user(principal, "group")
    return Group.create(
        id=uuid.uuid4(),
        owner=owner,
        name=name,
        family_name=family_name,
        ai_summary=ai_summary,
        created_at=now,
    )


def update_group(principal: Principal, group_id: uuid.UUID, changes: dict) -> tuple[Group, int]:
    """Apply the fields given to one of the caller's groups (another's is a 404)."""
    group = owned(Group, group_id, principal)
    if changes:
        Group.update(**changes).where(Group.id == group.id).execute()
    return get_group(principal, group_id)


# --- recipients ----------------------------------------------------------------------------


def group_ids_of(recipients: Iterable[Recipient]) -> dict[uuid.UUID, list[uuid.UUID]]:
    ids = [r.id for r in recipients]
    memberships: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        query = (
            GroupMembership.select(GroupMembership.recipient, GroupMembership.group)
            .where(GroupMembership.recipient.in_(ids))
            .order_by(GroupMembership.created_at)
        )
        for m in query:
            memberships[m.recipient_id].append(m.group_id)
    return memberships


def unsubscribed_group_ids_of(recipients: Iterable[Recipient]) -> dict:
    """The groups whose emails each recipient unsubscribed from (an unsubscribe link)."""
    ids = [r.id for r in recipients]
    left: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    if ids:
        query = GroupUnsubscribe.select(GroupUnsubscribe.recipient, GroupUnsubscribe.group).where(
            GroupUnsubscribe.recipient.in_(ids)
        )
        for row in query.order_by(GroupUnsubscribe.created_at):
            left[row.recipient_id].append(row.group_id)
    return left


def suppressions_of(recipients: Iterable[Recipient]) -> dict[str, dict]:
    """The suppression of each recipient's address that has one, by lower-case address."""
    emails = {r.email.strip().lower() for r in recipients if r.email}
    if not emails:
        return {}
    rows = Suppression.select().where(
        Suppression.email.in_(list(emails)), Suppression.suppressed_at.is_null(False)
    )
    return {r.email: {"reason": r.reason, "suppressed_at": r.suppressed_at} for r in rows}


def _check_groups(principal: Principal, group_ids: list[uuid.UUID]) -> None:
    """Every group must be the caller's (for the service role: exist)."""
    wanted = set(group_ids)
    found = {g.id for g in visible(Group, principal).where(Group.id.in_(list(wanted)))}
    for index, group_id in enumerate(group_ids):
        if group_id not in found:
            raise not_found(f"group_ids[{index}]", group_id)


def _set_groups(recipient: Recipient, group_ids: list[uuid.UUID], now: datetime) -> None:
    GroupMembership.delete().where(GroupMembership.recipient == recipient.id).execute()
    rows = [
        {"id": uuid.uuid4(), "group": g, "recipient": recipient.id, "created_at": now}
        for g in dict.fromkeys(group_ids)
    ]
    if rows:
        GroupMembership.insert_many(rows).execute()


def list_recipients(principal: Principal, group_id: uuid.UUID | None) -> list[Recipient]:
    """The caller's recipients, oldest first; of ``group_id`` only, which must be the caller's.

    Another user's group is a 404, as it is everywhere else, never an empty list.
    """
    query = visible(Recipient, principal).order_by(Recipient.created_at, Recipient.id)
    if group_id is not None:
        owned(Group, group_id, principal, "group_id")
        query = query.join(GroupMembership, on=(GroupMembership.recipient == Recipient.id)).where(
            GroupMembership.group == group_id
        )
    return list(query)


def create_recipient(principal: Principal, fields: dict, now: datetime) -> Recipient:
    if not fields.get("email") and not fields.get("phone"):
        raise unreachable(falcon.HTTP_400)
    owner = owning_user(principal, "recipient")
    group_ids = fields.pop("group_ids", [])
    _check_groups(principal, group_ids)
    with database.atomic():
        recipient = Recipient.create(id=uuid.uuid4(), owner=owner, created_at=now, **fields)
        _set_groups(recipient, group_ids, now)
    return recipient


def update_recipient(recipient: Recipient, principal: Principal, changes: dict, now) -> Recipient:
    """Apply the fields given (``group_ids`` replaces the memberships)."""
    group_ids = changes.pop("group_ids", None)
    if group_ids is not None:
        _check_groups(principal, group_ids)
    merged = {
        "email": changes.get("email", recipient.email),
        "phone": changes.get("phone", recipient.phone),
    }
    if not merged["email"] and not merged["phone"]:
        raise unreachable(falcon.HTTP_422)
    with database.atomic():
        if changes:
            Recipient.update(**changes).where(Recipient.id == recipient.id).execute()
        if group_ids is not None:
            _set_groups(recipient, group_ids, now)
    return Recipient.get_by_id(recipient.id)


def delete_recipient(recipient: Recipient, now: datetime) -> int:
    """Delete the recipient and cancel their jobs not yet started; return how many."""
    with database.atomic():
        cancelled = cancel_waiting(
            NotificationJob.recipient == recipient.id, now, "The recipient was deleted"
        )
        recipient.delete_instance()
    return cancelled
