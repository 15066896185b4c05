"""The peewee models: users, groups, recipients, updates, jobs, delivery logs, digest schedules.

Keys are UUIDs; every timestamp is an aware UTC ``datetime`` in Python and a naive UTC value in
the database (:class:`UTCDateTimeField`), so SQLite and PostgreSQL sort and compare alike.

One module a domain, every name re-exported here (``from tribe_shared.models import ...``):

- ``base``: ``utcnow``, ``new_ids``, ``UTCDateTimeField``, ``BaseModel``
- ``family``: ``User``, ``Group``, ``Recipient``, ``GroupMembership``, ``Update``
- ``digests``: ``DigestSchedule``
- ``jobs``: ``NotificationJob`` (and its indexes), ``DeliveryLog``
- ``events``: ``EmailEvent``, ``Suppression``, ``GroupUnsubscribe``
- ``operations``: ``BulkAction``, ``BulkActionJob``, ``IdempotencyKey``

The modules import in that order (each only from those before it), so every foreign key names
a model already defined.
"""

from __future__ import annotations

from tribe_shared.models.base import BaseModel, UTCDateTimeField, new_ids, utcnow
from tribe_shared.models.digests import DigestSchedule
from tribe_shared.models.events import EmailEvent, GroupUnsubscribe, Suppression
from tribe_shared.models.family import Group, GroupMembership, Recipient, Update, User
from tribe_shared.models.jobs import DeliveryLog, NotificationJob
from tribe_shared.models.operations import BulkAction, BulkActionJob, IdempotencyKey

ALL_MODELS = (
    User,
    Group,
    Recipient,
    GroupMembership,
    Update,
    DigestSchedule,
    NotificationJob,
    DeliveryLog,
    EmailEvent,
    Suppression,
    GroupUnsubscribe,
    IdempotencyKey,
    BulkAction,
    BulkActionJob,
)

__all__ = [
    "ALL_MODELS",
    "BaseModel",
    "BulkAction",
    "BulkActionJob",
    "DeliveryLog",
    "DigestSchedule",
    "EmailEvent",
    "Group",
    "GroupMembership",
    "GroupUnsubscribe",
    "IdempotencyKey",
    "NotificationJob",
    "Recipient",
    "Suppression",
    "UTCDateTimeField",
    "Update",
    "User",
    "new_ids",
    "utcnow",
]
