"""Request and response bodies (pydantic): validation and the OpenAPI document come from these.

Request models forbid unknown fields; every string that can reach an email header refuses
CR, LF and NUL, and no stored string may hold NUL.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    PlainValidator,
    model_validator,
)
from typing_extensions import TypeAliasType

from tribe_shared.contract import (
    EMAIL_TYPES,
    MAX_PERSONALIZATIONS,
    ContentType,
    DeliveryMethod,
    Frequency,
    JobStatus,
    NotificationType,
    Urgency,
)


def _no_control_characters(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must not contain line breaks or NUL characters")
    return value


def _no_nul_inside(value: Any) -> Any:
    """PostgreSQL cannot store NUL in JSON text: refuse it here rather than fail on insert."""
    if isinstance(value, str) and "\0" in value:
        raise ValueError("must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul_inside(key)
            _no_nul_inside(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul_inside(item)
    return value


#: RFC 3339 (what the document's ``format: date-time`` means): date, time and offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339_text(value: Any) -> Any:
    """A date-time in a body is RFC 3339 text, as documented: never a number of seconds, nor
    ``"0"`` or another form pydantic would also read."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time with a timezone, e.g. 2026-01-31T09:00:00Z")
    return value


#: Checked before surrounding whitespace is stripped, so a trailing line break is refused too,
#: exactly as the pattern in the document says.
HeaderText = Annotated[
    str,
    BeforeValidator(
        lambda value: _no_control_characters(value) if isinstance(value, str) else value
    ),
    Field(json_schema_extra={"pattern": r"^[^\r\n\x00]*$"}),
]
#: An aware date-time given as ISO 8601 text (pydantic would also take a number).
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


def _number_only(value: Any) -> Any:
    """JSON's integers (``5``, or ``5.0`` as JSON Schema counts it), never ``"5"`` or ``true``."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer")
    return value


#: Body integers and booleans are JSON's own, as the document says: not "5", "true" or 1.
#: (The number check comes after the bounds so that the document keeps them.)
JsonInt = BeforeValidator(_number_only)
BodyBool = Annotated[bool, Field(strict=True)]


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return _no_nul_inside(value)


NUL_FREE = r"^[^\x00]*$"
#: How the document describes a JSON object whose keys and strings hold no NUL, at any depth.
_NulFreeObject = Annotated[
    dict[str, "_NulFreeJson"], Field(json_schema_extra={"propertyNames": {"pattern": NUL_FREE}})
]
_NulFreeJson = TypeAliasType(
    "_NulFreeJson",
    Annotated[str, Field(pattern=NUL_FREE)]
    | int
    | float
    | bool
    | list["_NulFreeJson"]
    | _NulFreeObject
    | None,
)
#: Any JSON object, kept as given (strings are not stripped), that PostgreSQL can store.
JsonObject = Annotated[
    dict[str, Any], PlainValidator(_json_object, json_schema_input_type=_NulFreeObject)
]

#: The special-use domains (RFC 6761) that email addresses are refused for, as email-validator
#: does: ``a@b.test``, ``a@localhost``...
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


#: An address, not one at a special-use domain (what email-validator refuses beyond the format).
Address = Annotated[
    EmailStr,
    Field(
        json_schema_extra={
            "pattern": rf"^(?!.*[@.]({'|'.join(_any_case(d) for d in _SPECIAL_USE)})\.?$)"
        }
    ),
]
EmailType = Literal[EMAIL_TYPES]  # type: ignore[valid-type]
UrgencyName = Literal[tuple(u.value for u in Urgency)]  # type: ignore[valid-type]
StatusName = Literal[tuple(s.value for s in JobStatus)]  # type: ignore[valid-type]
MethodName = Literal[tuple(m.value for m in DeliveryMethod)]  # type: ignore[valid-type]
NotificationTypeName = Literal[tuple(t.value for t in NotificationType)]  # type: ignore[valid-type]

#: The furthest ahead a notification can be scheduled (one year).
MAX_DELAY_MINUTES = 366 * 24 * 60


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _not_null(*names: str):
    """Document optional fields of a PATCH as never null: the API refuses a null (422) where
    it cannot clear the field, but pydantic needs ``None`` as the "not given" default."""

    def strip_null(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            (kept,) = [option for option in field.pop("anyOf") if option != {"type": "null"}]
            field.pop("default", None)
            field.update(kept)

    return strip_null


class SendEmail(RequestModel):
    """One email: a template ``type`` rendered with ``templateData``."""

    to: Address
    type: EmailType
    templateData: JsonObject = Field(default_factory=dict)
    subject: HeaderText | None = Field(default=None, min_length=1, max_length=998)
    scheduled_for: Instant | None = Field(
        default=None, description="When to send (ISO 8601 with a timezone); default now"
    )
    priority: UrgencyName = "normal"


class SendBulkEmail(RequestModel):
    emails: list[SendEmail] = Field(min_length=1, max_length=MAX_PERSONALIZATIONS)


class EnqueueNotification(RequestModel):
    """One notification to a recipient of a group (the original ``enqueue_notification_job``).

    ``scheduled_for`` and ``delay_minutes`` are alternatives: not both.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["scheduled_for", "delay_minutes"],
                "properties": {
                    "scheduled_for": {"type": "string"},
                    "delay_minutes": {"type": "integer"},
                },
            }
        }
    )

    recipient_id: UUID
    group_id: UUID
    update_id: UUID | None = None
    notification_type: NotificationTypeName = "immediate"
    urgency: UrgencyName = "normal"
    delivery_method: MethodName = "email"
    content: JsonObject = Field(
        default_factory=dict,
        description="Template data: title, body, child_name, media_urls, subject, text (SMS)",
    )
    scheduled_for: Instant | None = None
    delay_minutes: Annotated[int, Field(ge=0, le=MAX_DELAY_MINUTES), JsonInt] | None = None

    @model_validator(mode="after")
    def _one_way_to_schedule(self):
        if self.scheduled_for is not None and self.delay_minutes is not None:
            raise ValueError("give scheduled_for or delay_minutes, not both")
        return self


PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
ContentTypeName = Literal[tuple(c.value for c in ContentType)]  # type: ignore[valid-type]


class GroupCreate(RequestModel):
    name: HeaderText = Field(min_length=1, max_length=200)


class GroupOut(BaseModel):
    id: UUID
    name: str
    recipient_count: int
    created_at: datetime


class GroupList(BaseModel):
    groups: list[GroupOut]


class RecipientFields(RequestModel):
    name: HeaderText = Field(min_length=1, max_length=200)
    email: Address | None = None
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN, description="E.164")
    relationship: HeaderText | None = Field(default=None, max_length=100)
    group_ids: list[UUID] = Field(default_factory=list, max_length=100)
    muted_until: Instant | None = None


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

    model_config = ConfigDict(json_schema_extra=_not_null("name"))

    name: HeaderText | None = Field(default=None, min_length=1, max_length=200)


class RecipientOut(BaseModel):
    id: UUID
    name: str
    email: str | None
    phone: str | None
    relationship: str | None
    group_ids: list[UUID]
    muted_until: datetime | None
    created_at: datetime


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


class UpdatePosted(BaseModel):
    success: bool
    update: UpdateOut
    notifications: FanOutCounts
    message: str


class SendEmailAccepted(BaseModel):
    success: bool
    messageId: UUID
    jobId: UUID
    status: Literal["queued", "pending"]
    statusCode: int
    message: str


class BulkJob(BaseModel):
    jobId: UUID
    to: str
    status: Literal["queued", "pending"]


class SendBulkEmailAccepted(BaseModel):
    success: bool
    jobs: list[BulkJob]
    statusCode: int
    message: str


class Job(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: UUID
    status: StatusName
    kind: str
    delivery_method: str
    notification_type: str
    urgency: str
    to: str | None
    recipient_id: UUID | None
    group_id: UUID | None
    update_id: UUID | None
    scheduled_for: datetime
    created_at: datetime
    queued_at: datetime | None
    processed_at: datetime | None
    processing_time_ms: int | None
    time_until_scheduled_ms: int
    attempts: int
    retry_count: int
    message_id: str | None
    failure_reason: str | None


class JobAccepted(BaseModel):
    success: bool
    jobId: UUID
    status: Literal["queued", "pending"]
    statusCode: int
    message: str
    job: Job


class JobListQuery(RequestModel):
    status: StatusName | None = None
    delivery_method: MethodName | None = None
    notification_type: NotificationTypeName | None = None
    recipient_id: UUID | None = None
    group_id: UUID | None = None
    sort: Literal["created_at", "scheduled_for", "processed_at", "status"] = "created_at"
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class Pagination(BaseModel):
    total: int
    total_is_exact: bool
    limit: int
    offset: int
    has_more: bool


class JobList(BaseModel):
    jobs: list[Job]
    pagination: Pagination


class JobCancelled(BaseModel):
    success: bool
    job: Job


class JobRecipient(BaseModel):
    id: UUID
    name: str
    relationship: str | None


class DeliveryLog(BaseModel):
    id: UUID
    attempt: int
    provider: str
    provider_message_id: str | None
    status: str
    error: str | None
    duration_ms: int | None
    created_at: datetime


class JobDetail(BaseModel):
    job: Job
    recipient: JobRecipient | None
    delivery_logs: list[DeliveryLog]


class DatabaseHealth(BaseModel):
    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class RedisHealth(BaseModel):
    configured: bool
    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class QueueDepth(BaseModel):
    waiting: int
    active: int
    delayed: int
    failed: int


class QueueMetrics(QueueDepth):
    queues: dict[str, QueueDepth]


class CircuitBreakerState(BaseModel):
    state: Literal["closed", "open", "half_open", "unknown"]
    consecutive_failures: int | None = None
    opened_at: float | None = None
    reopens_at: float | None = None
    error: str | None = None


class RedisHealthDetail(RedisHealth):
    circuit_breaker: CircuitBreakerState
    queue_metrics: QueueMetrics | None
    #: Worker processes with a heartbeat in the last 60 s (None when Redis was not read).
    workers_alive: int | None = None
    warnings: list[str]


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    environment: str
    database: DatabaseHealth
    redis: RedisHealth
    #: What an operator should look at; any makes the status ``degraded``.
    warnings: list[str] = []


class Error(BaseModel):
    title: str
    description: str
    errors: list[dict[str, str]] | None = None


# --- digest schedules ----------------------------------------------------------------------

FrequencyName = Literal[tuple(f.value for f in Frequency)]  # type: ignore[valid-type]
#: ``HH:MM`` or ``HH:MM:SS``, 24-hour, local to the schedule's timezone.
DELIVERY_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
ALL_CONTENT_TYPES = [c.value for c in ContentType]


def _known_timezone(name: str) -> str:
    if name not in _zone_names():
        raise ValueError(f"{name!r} is not an IANA timezone name (e.g. 'America/New_York')")
    return name


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _distinct(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a content type")
    return values


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
    list[ContentTypeName],
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
        json_schema_extra=_not_null(
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
