"""The base of every model: the UTC clock, ids, the UTC timestamp field and :class:`BaseModel`.

Keys are UUIDs; every timestamp is an aware UTC ``datetime`` in Python and a naive UTC value in
the database (:class:`UTCDateTimeField`), so SQLite and PostgreSQL sort and compare alike.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from peewee import DateTimeField, Model, UUIDField

from tribe_shared.db import database


def utcnow() -> datetime:
    """The default clock: an aware UTC ``datetime``."""
    return datetime.now(UTC)


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) UUIDs from one read of the system's random source.

    ``uuid.uuid4()`` reads it once per id, and each read lets go of the GIL: on a worker whose
    other threads are busy, every one of thousands of ids then waits to get it back.
    """
    pool = os.urandom(16 * count)
    return [uuid.UUID(bytes=pool[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


class UTCDateTimeField(DateTimeField):
    """Stores aware datetimes as naive UTC and reads them back as aware UTC."""

    def db_value(self, value):
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class BaseModel(Model):
    id = UUIDField(primary_key=True, default=uuid.uuid4)

    class Meta:
        database = database
        legacy_table_names = False
