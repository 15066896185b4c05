"""Users, groups and recipients written straight into the database, for notification tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus, Urgency
from tribe_shared.models import (
    Group,
    GroupMembership,
    NotificationJob,
    Recipient,
    Update,
    User,
    utcnow,
)

#: What a notification usually carries: the template data of ``notification``.
NOTIFICATION_CONTENT = {
    "title": "First steps",
    "body": "Maya walked across the living room today!",
    "child_name": "Maya",
}


@dataclass(frozen=True)
class Family:
    """A parent with one group and one recipient in it."""

    owner: User
    group: Group
    recipient: Recipient


def user(user_id: uuid.UUID | None = None) -> User:
    """The users row of ``user_id`` (the API may have created it already for a token's sub)."""
    user_id = user_id or uuid.uuid4()
    User.insert(id=user_id).on_conflict_ignore().execute()
    return User.get_by_id(user_id)


def group_of(owner: User, name: str = "Grandparents") -> Group:
    return Group.create(id=uuid.uuid4(), owner=owner.id, name=name)


def recipient_of(
    owner: User,
    *,
    name: str = "Nana",
    email: str | None = "nana@example.com",
    phone: str | None = None,
    muted_until: datetime | None = None,
    groups: tuple[Group, ...] = (),
) -> Recipient:
    """A recipient of ``owner``, a member of ``groups``."""
    recipient = Recipient.create(
        id=uuid.uuid4(),
        owner=owner.id,
        name=name,
        email=email,
        phone=phone,
        relationship="grandmother",
        muted_until=muted_until,
    )
    for group in groups:
        GroupMembership.create(id=uuid.uuid4(), group=group.id, recipient=recipient.id)
    return recipient


def family(owner_id: uuid.UUID | None = None, **recipient_fields) -> Family:
    """A parent (``owner_id``, e.g. a token's user) with a group and a recipient in it."""
    owner = user(owner_id)
    group = group_of(owner)
    return Family(owner, group, recipient_of(owner, groups=(group,), **recipient_fields))


def update_in(group: Group, title: str = "First steps", created_at=None) -> Update:
    return Update.create(
        id=uuid.uuid4(),
        owner=group.owner_id,
        group=group.id,
        content_type="text",
        title=title,
        created_at=created_at or utcnow(),
    )


def notification_job(
    family: Family,
    *,
    status: JobStatus = JobStatus.QUEUED,
    method: DeliveryMethod = DeliveryMethod.EMAIL,
    urgency: Urgency = Urgency.NORMAL,
    content: dict | None = None,
) -> NotificationJob:
    """Store one notification job to the family's recipient (``queued``, as if handed over)."""
    now = utcnow()
    return NotificationJob.create(
        id=uuid.uuid4(),
        kind=JobKind.NOTIFICATION,
        status=status,
        owner=family.owner.id,
        created_by=family.owner.id,
        recipient=family.recipient.id,
        group=family.group.id,
        to_email=family.recipient.email,
        urgency=urgency,
        delivery_method=method,
        content=NOTIFICATION_CONTENT if content is None else content,
        created_at=now,
        scheduled_for=now,
    )
