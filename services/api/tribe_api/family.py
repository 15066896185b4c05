"""The family data behind notifications: groups, recipients and the updates parents post.

Every read and write is scoped to the caller (the service role sees everything); another user's
object is a 404 that reveals nothing. Posting an update fans out, in the same transaction, one
notification job per recipient of the group who is not muted and has no active digest schedule
for it; the jobs are handed to the broker after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import dramatiq
import falcon
from peewee import JOIN, fn

from tribe_api.auth import Principal
from tribe_api.errors import ValidationFailed
from tribe_shared.broker import JobRef, send_staged, stage_jobs
from tribe_shared.contract import (
    CLAIMABLE_STATUSES,
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationType,
    Urgency,
)
from tribe_shared.db import database
from tribe_shared.models import (
    DigestSchedule,
    Group,
    GroupMembership,
    NotificationJob,
    Recipient,
    Update,
    db_value,
    new_ids,
)


def owned(model, object_id: uuid.UUID, principal: Principal, field: str = "id"):
    """The caller's object (any for the service role); anything else is a 404."""
    obj = model.get_or_none(model.id == object_id)
    if obj is None or not (principal.is_service or obj.owner_id == principal.user_id):
        label = "" if field == "id" else f" {field}"
        raise falcon.HTTPNotFound(title="Not found", description=f"No{label} {object_id}")
    return obj


def visible(model, principal: Principal):
    query = model.select()
    return query if principal.is_service else query.where(model.owner == principal.user_id)


def owning_user(principal: Principal, what: str) -> uuid.UUID:
    """The user a new ``what`` will belong to: the caller. The service role's API key acts for
    no user, so what must belong to one cannot be created with it: a 422 that says so."""
    if principal.user_id is None:
        raise falcon.HTTPUnprocessableEntity(
            title="No owning user",
            description=(
                f"A {what} belongs to a user, and this service_role token acts for no user "
                f"(it has no sub): create the {what} with that user's token, or with a "
                "service-role token whose sub is their id"
            ),
        )
    return principal.user_id


def unprocessable(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}], status=falcon.HTTP_422)


def unreachable(status: str) -> ValidationFailed:
    """A recipient with neither an email address nor a phone number: both fields are at fault."""
    message = "A recipient needs an email address or a phone number"
    fields = [{"field": field, "message": message} for field in ("email", "phone")]
    return ValidationFailed(fields, status=status)


# --- groups --------------------------------------------------------------------------------


def list_groups(principal: Principal) -> list[tuple[Group, int]]:
    """The caller's groups, oldest first, each with its number of recipients."""
    count = fn.COUNT(GroupMembership.id)
    query = (
        visible(Group, principal)
        .select_extend(count.alias("recipient_count"))
        .join(GroupMembership, JOIN.LEFT_OUTER, on=(GroupMembership.group == Group.id))
        .group_by(Group.id)
        .order_by(Group.created_at, Group.id)
    )
    return [(group, group.recipient_count) for group in query]


def create_group(principal: Principal, name: str, now: datetime) -> Group:
    owner = owning_user(principal, "group")
    return Group.create(id=uuid.uuid4(), owner=owner, name=name, created_at=now)


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


def _check_groups(principal: Principal, group_ids: list[uuid.UUID]) -> None:
    """Every group must be the caller's (for the service role: exist)."""
    wanted = set(group_ids)
    found = {g.id for g in visible(Group, principal).where(Group.id.in_(list(wanted)))}
    for index, group_id in enumerate(group_ids):
        if group_id not in found:
            raise falcon.HTTPNotFound(
                title="Not found", description=f"No group_ids[{index}] {group_id}"
            )


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
        cancelled = cancel_waiting_jobs(
            NotificationJob.recipient == recipient.id, "The recipient was deleted", now
        )
        recipient.delete_instance()
    return cancelled


def cancel_waiting_jobs(condition, reason: str, now: datetime) -> int:
    """Cancel the jobs matching ``condition`` that no worker has started; return how many."""
    return (
        NotificationJob.update(status=JobStatus.CANCELLED, processed_at=now, failure_reason=reason)
        .where(condition, NotificationJob.status.in_(list(CLAIMABLE_STATUSES)))
        .execute()
    )


# --- notifications -------------------------------------------------------------------------


def notification_job(
    principal: Principal,
    recipient: Recipient,
    group_id: uuid.UUID,
    content: dict,
    now: datetime,
    *,
    update_id: uuid.UUID | None = None,
    notification_type: str = NotificationType.IMMEDIATE,
    urgency: str = Urgency.NORMAL,
    delivery_method: str = DeliveryMethod.EMAIL,
    scheduled_for: datetime | None = None,
) -> NotificationJob:
    """A new ``pending`` notification job to ``recipient``, owned by the recipient's owner and
    created by the caller (by no one for the service role's key)."""
    return NotificationJob(
        id=uuid.uuid4(),
        kind=JobKind.NOTIFICATION,
        status=JobStatus.PENDING,
        owner=recipient.owner_id,
        created_by=principal.user_id,
        recipient=recipient.id,
        group=group_id,
        family_update=update_id,
        to_email=recipient.email,
        notification_type=notification_type,
        urgency=urgency,
        delivery_method=delivery_method,
        content=content,
        scheduled_for=scheduled_for or now,
        created_at=now,
    )


# --- updates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    update: Update
    jobs: list[JobRef]
    in_digest: int
    muted: int
    unreachable: int


#: The columns of a notification job an update writes; the others are NULL.
_FAN_OUT_FIELDS = [
    f
    for f in NotificationJob._meta.sorted_fields
    if f.name
    not in (
        "batch_key",
        "digest_schedule",
        "claimed_at",
        "processed_at",
        "message_id",
        "failure_reason",
        "dead_letter",
    )
]
_COLUMN = {f.name: i for i, f in enumerate(_FAN_OUT_FIELDS)}


class UpdatePoster:
    """Posts an update and notifies, at once, every recipient who should hear of it now.

    A group may have thousands of recipients: they are read in one query, with whether each is
    on an active digest for the group or muted, and their jobs are written as rows in a few
    multi-row INSERTs, then handed to the broker in pipelined batches.
    """

    def __init__(self, broker: dramatiq.Broker | None, clock: Callable[[], datetime]):
        self._broker = broker
        self._clock = clock

    def post(self, principal: Principal, fields: dict) -> FanOut:
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
        content = {
            "title": update.title,
            "body": update.body,
            "child_name": fields.get("child_name"),
            "content_type": update.content_type,
            "media_urls": update.media_urls,
            "update_id": str(update.id),
        }
        in_digest = muted = unreachable = 0
        notified = []  # (owner id, recipient id, email) as the database gave them
        for owner_id, recipient_id, email, has_digest, is_muted in _members(group.id, now):
            if has_digest:
                in_digest += 1
            elif is_muted:
                muted += 1
            elif not email:
                unreachable += 1
            else:
                notified.append((owner_id, recipient_id, email))
        jobs = [
            JobRef(
                id=job_id,
                kind=JobKind.NOTIFICATION,
                urgency=Urgency.NORMAL,
                scheduled_for=now,
                update_id=update.id,
            )
            for job_id in new_ids(len(notified))
        ]
        template = _job_row(principal, group.id, update.id, content, now)

        def insert(staged_jobs: list[JobRef]) -> None:
            rows = []
            for job, (owner_id, recipient_id, email) in zip(staged_jobs, notified, strict=True):
                row = template.copy()
                row[_COLUMN["id"]] = db_value(NotificationJob.id, job.id)
                row[_COLUMN["owner"]] = owner_id
                row[_COLUMN["recipient"]] = recipient_id
                row[_COLUMN["to_email"]] = email
                row[_COLUMN["status"]] = job.status
                row[_COLUMN["queued_at"]] = db_value(NotificationJob.queued_at, job.queued_at)
                rows.append(row)
            NotificationJob.insert_rows(_FAN_OUT_FIELDS, rows)

        with database.atomic():
            update.save(force_insert=True)
            staged = stage_jobs(self._broker, jobs, clock=self._clock, insert=insert)
        send_staged(staged)
        return FanOut(update, jobs, in_digest, muted, unreachable)


def _members(group_id: uuid.UUID, now: datetime) -> list[tuple]:
    """Each recipient of the group: (owner id, id, email, on an active digest for it, muted).

    One query; ids and addresses stay as the database gave them, to be written back as such.
    """
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
    return list(database.execute(query))


def _job_row(principal, group_id, update_id, content: dict, now: datetime) -> list:
    """A row of :data:`_FAN_OUT_FIELDS` with what every job of an update shares."""
    shared = {
        "kind": JobKind.NOTIFICATION,
        "created_by": principal.user_id,
        "group": group_id,
        "family_update": update_id,
        "notification_type": NotificationType.IMMEDIATE,
        "urgency": Urgency.NORMAL,
        "delivery_method": DeliveryMethod.EMAIL,
        "content": content,
        "scheduled_for": now,
        "created_at": now,
        "attempts": 0,
        "retry_count": 0,
        "lease_losses": 0,
    }
    return [db_value(f, shared.get(f.name)) for f in _FAN_OUT_FIELDS]
