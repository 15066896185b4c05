"""Digest schedules."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

from tribe_api.schemas.fields import (
    BodyBool,
    JsonInt,
    RequestModel,
    not_null,
)
from tribe_shared.contract import (
    ContentType,
    Frequency,
)
from tribe_shared.schedule import DELIVERY_TIME_PATTERN

FrequencyName = Literal[tuple(f.value for f in Frequency)]  # type: ignore[valid-type]
ALL_CONTENT_TYPES = [c.value for c in ContentType]


def _known_timezone(name: str) -> str:
    if name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA timezone name (e.g. 'America/New_York')")
    return name


#: Names the zone database holds that are not IANA zones: the host's own setting, the
#: database's internals, the two alternative trees.
_NOT_ZONES = ("localtime", "posixrules", "Factory")
_NOT_ZONE_TREES = ("posix/", "right/")


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(
        name
        for name in available_timezones()
        if name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_TREES)
    )


#: The original system's names, taken as ours.
CONTENT_TYPE_ALIASES = {"photos": "photo", "milestones": "milestone", "videos": "video"}
ContentTypeOrAlias = Literal[(*ALL_CONTENT_TYPES, *CONTENT_TYPE_ALIASES)]  # type: ignore[valid-type]


def _distinct(values: list) -> list:
    """Each content type once: an exact repeat is refused, a name and its alias count as one."""
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a content type")
    return list(dict.fromkeys(CONTENT_TYPE_ALIASES.get(value, value) for value in values))


TimezoneName = Annotated[
    str,
    Field(
        max_length=64,
        examples=["Europe/London"],
        json_schema_extra={"enum": sorted(_zone_names())},
    ),
    AfterValidator(_known_timezone),
]
DeliveryTime = Annotated[str, Field(pattern=DELIVERY_TIME_PATTERN, examples=["09:00", "18:30:00"])]
DeliveryDay = Annotated[
    int,
    Field(ge=1, le=31, description="weekly: 1 (Monday) to 7 (Sunday); monthly: 1 to 31"),
    JsonInt,
]
MaxUpdates = Annotated[int, Field(ge=1, le=100), JsonInt]
ContentTypes = Annotated[
    list[ContentTypeOrAlias],
    Field(min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]


class DigestScheduleCreate(RequestModel):
    """A digest of a group's updates for one of its recipients (one per recipient and group).

    ``delivery_day`` is required for weekly (1-7, 1 = Monday) and monthly (1-31, clamped to the
    month's last day) digests and must be absent for daily ones.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {
                        "frequency": {"const": "daily"},
                        "delivery_day": {"type": "null"},
                    }
                },
                {
                    "required": ["delivery_day"],
                    "properties": {
                        "frequency": {"const": "weekly"},
                        "delivery_day": {"type": "integer", "maximum": 7},
                    },
                },
                {
                    "required": ["delivery_day"],
                    "properties": {
                        "frequency": {"const": "monthly"},
                        "delivery_day": {"type": "integer"},
                    },
                },
            ]
        }
    )

    recipient_id: UUID
    group_id: UUID
    frequency: FrequencyName
    delivery_time: DeliveryTime
    delivery_day: DeliveryDay | None = None
    timezone: TimezoneName
    is_active: BodyBool = True
    max_updates_per_digest: MaxUpdates = 10
    include_content_types: ContentTypes = Field(default_factory=lambda: list(ALL_CONTENT_TYPES))


class DigestSchedulePatch(RequestModel):
    """Only the fields given change; the next run is computed again from now.

    Only ``delivery_day`` may be null (a daily digest has none); any other null is a 422.
    """

    model_config = ConfigDict(
        json_schema_extra=not_null(
            "frequency",
            "delivery_time",
            "timezone",
            "is_active",
            "max_updates_per_digest",
            "include_content_types",
        )
    )

    frequency: FrequencyName | None = None
    delivery_time: DeliveryTime | None = None
    delivery_day: DeliveryDay | None = None
    timezone: TimezoneName | None = None
    is_active: BodyBool | None = None
    max_updates_per_digest: MaxUpdates | None = None
    include_content_types: ContentTypes | None = None


class DigestScheduleQuery(RequestModel):
    recipient_id: UUID | None = None
    group_id: UUID | None = None
    frequency: FrequencyName | None = None
    is_active: bool | None = None


class DigestScheduleOut(BaseModel):
    id: UUID
    recipient_id: UUID
    group_id: UUID
    frequency: FrequencyName
    delivery_time: str
    delivery_day: int | None
    timezone: str
    is_active: bool
    max_updates_per_digest: int
    include_content_types: list[str]
    last_digest_sent: datetime | None
    next_digest_scheduled: datetime | None = Field(description="UTC; null while paused")
    created_at: datetime
    updated_at: datetime


class DigestScheduleList(BaseModel):
    digest_schedules: list[DigestScheduleOut]


class DigestScheduleDeleted(BaseModel):
    deleted: bool
    cancelled_jobs: int
