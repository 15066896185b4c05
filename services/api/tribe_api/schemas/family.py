"""Groups, recipients and updates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
)

from tribe_api.schemas.events import RecipientSuppression
from tribe_api.schemas.fields import (
    NON_BLANK,
    Address,
    BodyBool,
    ContentTypeName,
    HeaderText,
    Instant,
    LocaleName,
    MethodName,
    RequestModel,
    not_null,
)

PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"


AI_SUMMARY = (
    "Open the group's digests with a short AI-written summary of their updates (when the "
    "worker has a model; only the updates' titles and text are sent to it)"
)
#: A phone number in E.164 (``+`` country code and number, no spaces).
#: (Whether its country has such numbers is checked with the stored rules, 422: see
#: :func:`tribe_api.family.e164`.)
Phone = Annotated[str, Field(pattern=PHONE_PATTERN, description="E.164")]
#: The channels a recipient hears from one group on, each its own job.
Channels = Annotated[
    list[MethodName],
    Field(min_length=1, max_length=3, description="email, sms, whatsapp: one job each"),
    AfterValidator(lambda channels: list(dict.fromkeys(channels))),
]


class GroupCreate(RequestModel):
    name: HeaderText = Field(min_length=1, max_length=200, **NON_BLANK)
    family_name: HeaderText | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description='Who the emails come from: "The Smiths" sends as "The Smiths on Tribe"',
        **NON_BLANK,
    )
    ai_summary: BodyBool = Field(default=False, description=AI_SUMMARY)


class GroupPatch(RequestModel):
    """Only the fields given change."""

    ai_summary: BodyBool = Field(description=AI_SUMMARY)


class GroupOut(BaseModel):
    id: UUID
    name: str
    family_name: str | None = None
    ai_summary: bool = False
    recipient_count: int
    created_at: datetime


class GroupList(BaseModel):
    groups: list[GroupOut]


class RecipientFields(RequestModel):
    name: HeaderText = Field(min_length=1, max_length=200, **NON_BLANK)
    email: Address | None = None
    phone: Phone | None = None
    relationship: HeaderText | None = Field(default=None, max_length=100)
    group_ids: list[UUID] = Field(default_factory=list, max_length=100)
    muted_until: Instant | None = None
    locale: LocaleName | None = None
    channels: Channels | None = Field(
        default=None,
        description="The channels of every group in group_ids (default: email); a phone "
        "channel needs a phone (else 422)",
    )
    group_channels: dict[UUID, Channels] | None = Field(
        default=None,
        max_length=100,
        description="Channels per group (overrides channels for that group); each group must "
        "be one of the recipient's",
    )


class RecipientCreate(RecipientFields):
    """A new recipient, with an email address or a phone number (or both)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
                {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
            ]
        }
    )


class RecipientPatch(RecipientFields):
    """Only the fields given change; ``group_ids`` replaces the memberships.

    ``name`` cannot be null (422); ``email`` or ``phone`` can, while the other remains (else 422).
    """

    model_config = ConfigDict(json_schema_extra=not_null("name"))

    name: HeaderText | None = Field(default=None, min_length=1, max_length=200, **NON_BLANK)


class RecipientOut(BaseModel):
    id: UUID
    name: str
    email: str | None
    phone: str | None
    relationship: str | None
    group_ids: list[UUID]
    muted_until: datetime | None
    locale: str | None = None
    created_at: datetime
    email_suppressed: RecipientSuppression | None = Field(
        default=None, description="The address gets no email at all (a bounce, a complaint...)"
    )
    unsubscribed_group_ids: list[UUID] = Field(
        default_factory=list, description="Groups whose emails the recipient unsubscribed from"
    )
    group_channels: dict[UUID, list[str]] = Field(
        default_factory=dict, description="The channels the recipient hears from each group on"
    )


class RecipientList(BaseModel):
    recipients: list[RecipientOut]


class RecipientQuery(RequestModel):
    group_id: UUID | None = None


class RecipientDeleted(BaseModel):
    deleted: bool
    cancelled_jobs: int


class UpdateCreate(RequestModel):
    group_id: UUID
    content_type: ContentTypeName
    title: HeaderText | None = Field(default=None, max_length=300)
    body: str = Field(default="", max_length=20_000, pattern=r"^[^\x00]*$")
    media_urls: list[HttpUrl] = Field(default_factory=list, max_length=20)
    child_name: HeaderText | None = Field(default=None, max_length=100)


class UpdateOut(BaseModel):
    id: UUID
    group_id: UUID
    content_type: str
    title: str | None
    body: str
    media_urls: list[str]
    created_at: datetime


class FanOutCounts(BaseModel):
    queued: int
    pending: int
    in_digest: int
    muted: int
    unreachable: int
    unsubscribed: int = 0


class UpdatePosted(BaseModel):
    success: bool
    update: UpdateOut
    notifications: FanOutCounts
    message: str
