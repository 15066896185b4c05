"""The family behind notifications: groups and their recipients.

Every read and write is scoped to the caller (:mod:`tribe_api.access`): the service role sees
everything; another user's object is a 404 that reveals nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import falcon
import phonenumbers
from peewee import JOIN, fn

from tribe_api.access import not_found, owned, owning_user, visible
from tribe_api.auth import Principal
from tribe_api.errors import Kind, ValidationFailed, unprocessable
from tribe_api.jobs import cancel_waiting
from tribe_shared.contract import DeliveryMethod
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


def _set_groups(
    recipient: Recipient, group_ids: list[uuid.UUID], now: datetime, channels: dict
) -> None:
    """Replace the memberships; each group's channels as ``channels`` says, else as they were
    (None: email)."""
    kept = dict(
        GroupMembership.select(GroupMembership.group, GroupMembership.channels)
        .where(GroupMembership.recipient == recipient.id)
        .tuples()
    )
    GroupMembership.delete().where(GroupMembership.recipient == recipient.id).execute()
    rows = [
        {
            "id": uuid.uuid4(),
            "group": g,
            "recipient": recipient.id,
            "created_at": now,
            "channels": channels.get(g, kept.get(g)),
        }
        for g in dict.fromkeys(group_ids)
    ]
    if rows:
        GroupMembership.insert_many(rows).execute()


# --- channels (issue #18) --------------------------------------------------------------------


def e164(value: str | None) -> str | None:
    """A phone number ``phonenumbers`` reads as possible for its country code (a known code,
    a length that country's numbers have), in E.164; else a 422 naming ``phone``.

    Not ``is_valid_number``: the ranges reserved for drama and documentation (+44 7700 900xxx,
    +1 555 01xx) are not "valid", and Twilio's 21211 fails a job to a number no one holds."""
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise unprocessable("phone", "Not an E.164 phone number") from None
    known = phonenumbers.region_code_for_country_code(number.country_code) != "ZZ"
    if not known or not phonenumbers.is_possible_number(number):
        raise unprocessable("phone", "Not a possible phone number for its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


#: The channels that need the recipient's phone number.
PHONE_CHANNELS = (DeliveryMethod.SMS, DeliveryMethod.WHATSAPP)


def channels_of(recipients: Iterable[Recipient]) -> dict[uuid.UUID, dict]:
    """Each recipient's channels, by group (email alone where none were chosen)."""
    ids = [r.id for r in recipients]
    chosen: dict[uuid.UUID, dict] = {i: {} for i in ids}
    if ids:
        query = GroupMembership.select(
            GroupMembership.recipient, GroupMembership.group, GroupMembership.channels
        ).where(GroupMembership.recipient.in_(ids))
        for recipient_id, group_id, channels in query.tuples():
            chosen[recipient_id][str(group_id)] = channels or [DeliveryMethod.EMAIL.value]
    return chosen


def _chosen_channels(fields: dict, group_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The channels ``fields`` choose, by group: ``group_channels`` for its groups (each one of
    ``group_ids``, else 422), ``channels`` for the other groups of ``group_ids``."""
    default = fields.pop("channels", None)
    per_group = fields.pop("group_channels", None) or {}
    for group_id in per_group:
        if group_id not in group_ids:
            raise unprocessable(
                "group_channels", f"{group_id} is not one of the recipient's groups"
            )
    chosen = dict.fromkeys(group_ids, default) if default is not None else {}
    chosen.update(per_group)
    return chosen


def _require_addresses(channels: Iterable[list[str] | None], email, phone, field: str) -> None:
    """A 422 (naming ``field``) when a chosen channel has no address to go to."""
    wanted = {c for chosen in channels if chosen for c in chosen}
    if not phone and wanted & set(PHONE_CHANNELS):
        names = " and ".join(sorted(wanted & set(PHONE_CHANNELS)))
        raise unprocessable(field, f"The recipient has no phone number for {names}")
    if not email and DeliveryMethod.EMAIL in wanted:
        raise unprocessable(field, "The recipient has no email address for email")


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
    fields["phone"] = e164(fields.get("phone"))
    owner = owning_user(principal, "recipient")
    group_ids = fields.pop("group_ids", [])
    field = "group_channels" if fields.get("group_channels") else "channels"
    chosen = _chosen_channels(fields, group_ids)
    _check_groups(principal, group_ids)
    _require_addresses(chosen.values(), fields.get("email"), fields.get("phone"), field)
    with database.atomic():
        recipient = Recipient.create(id=uuid.uuid4(), owner=owner, created_at=now, **fields)
        _set_groups(recipient, group_ids, now, chosen)
    return recipient


def update_recipient(recipient: Recipient, principal: Principal, changes: dict, now) -> Recipient:
    """Apply the fields given (``group_ids`` replaces the memberships)."""
    group_ids = changes.pop("group_ids", None)
    if group_ids is not None:
        _check_groups(principal, group_ids)
    if changes.get("phone") is not None:
        changes["phone"] = e164(changes["phone"])
    current = {uuid.UUID(g): c for g, c in channels_of([recipient])[recipient.id].items()}
    groups = list(current) if group_ids is None else group_ids
    field = "group_channels" if changes.get("group_channels") else "channels"
    chosen = _chosen_channels(changes, groups)
    merged = {
        "email": changes.get("email", recipient.email),
        "phone": changes.get("phone", recipient.phone),
    }
    if not merged["email"] and not merged["phone"]:
        raise unreachable(falcon.HTTP_422)
    after = {g: chosen.get(g, current.get(g)) for g in groups}
    lost = "phone" if "phone" in changes else "email" if "email" in changes else field
    _require_addresses(after.values(), merged["email"], merged["phone"], lost)
    with database.atomic():
        if changes:
            Recipient.update(**changes).where(Recipient.id == recipient.id).execute()
        if group_ids is not None:
            _set_groups(recipient, group_ids, now, chosen)
        else:
            for group_id, channels in chosen.items():
                GroupMembership.update(channels=channels).where(
                    GroupMembership.recipient == recipient.id, GroupMembership.group == group_id
                ).execute()
    return Recipient.get_by_id(recipient.id)


def delete_recipient(recipient: Recipient, now: datetime) -> int:
    """Delete the recipient and cancel their jobs not yet started; return how many."""
    with database.atomic():
        cancelled = cancel_waiting(
            NotificationJob.recipient == recipient.id, now, "The recipient was deleted"
        )
        recipient.delete_instance()
    return cancelled
