"""Digest schedules: when a recipient hears a group's updates gathered in one email."""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, JSONField, SmallIntegerField

from tribe_shared.models.base import BaseModel, UTCDateTimeField, utcnow
from tribe_shared.models.family import Group, Recipient, User


class DigestSchedule(BaseModel):
    owner = ForeignKeyField(User, backref="digest_schedules", on_delete="CASCADE")
    #: Indexed first in the unique (recipient, group) key.
    recipient = ForeignKeyField(
        Recipient, backref="digest_schedules", on_delete="CASCADE", index=False
    )
    group = ForeignKeyField(Group, backref="digest_schedules", on_delete="CASCADE")
    frequency = CharField(max_length=10)
    delivery_time = CharField(max_length=8)  # local "HH:MM:SS"
    delivery_day = SmallIntegerField(null=True)
    timezone = CharField(max_length=64)
    is_active = BooleanField(default=True)
    max_updates_per_digest = SmallIntegerField(default=10)
    include_content_types = JSONField(default=list)
    last_digest_sent = UTCDateTimeField(null=True)
    next_digest_scheduled = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "digest_schedules"
        indexes = (
            (("recipient", "group"), True),
            (("is_active", "next_digest_scheduled"), False),
        )
