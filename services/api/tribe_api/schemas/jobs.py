"""Jobs: the accepting requests (emails, notifications), the list's query, and the job as
answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from tribe_api.schemas.events import EmailEventOut
from tribe_api.schemas.fields import (
    MAX_DELAY_MINUTES,
    NON_BLANK,
    NUL_FREE,
    Address,
    ContentTypeName,
    EmailType,
    HeaderText,
    Instant,
    JsonInt,
    JsonObject,
    LocaleName,
    MethodName,
    NotificationTypeName,
    RequestModel,
    StatusName,
    UrgencyName,
)
from tribe_shared.contract import (
    MAX_PERSONALIZATIONS,
    DeliveryOutcome,
    JobKind,
)

OutcomeName = Literal[tuple(o.value for o in DeliveryOutcome)]  # type: ignore[valid-type]


class SendEmail(RequestModel):
    """One email: a template ``type`` rendered with ``templateData``."""

    to: Address
    type: EmailType
    templateData: JsonObject = Field(default_factory=dict)
    subject: HeaderText | None = Field(default=None, min_length=1, max_length=998, **NON_BLANK)
    scheduled_for: Instant | None = Field(
        default=None, description="When to send (ISO 8601 with a timezone); default now"
    )
    priority: UrgencyName = "normal"
    locale: LocaleName | None = Field(
        default=None, description="The language to write it in (`es`, `es-MX`); default English"
    )


class SendBulkEmail(RequestModel):
    emails: list[SendEmail] = Field(min_length=1, max_length=MAX_PERSONALIZATIONS)


class NotificationContent(RequestModel):
    """What a notification shows: its email renders these, an SMS sends ``text`` (else the
    title and the body). Links are http(s) only."""

    title: str | None = Field(default=None, max_length=300, pattern=NUL_FREE)
    body: str | None = Field(default=None, max_length=20_000, pattern=NUL_FREE)
    child_name: HeaderText | None = Field(default=None, max_length=100)
    content_type: ContentTypeName | None = None
    media_urls: list[HttpUrl] = Field(default_factory=list, max_length=20)
    subject: HeaderText | None = Field(default=None, min_length=1, max_length=998, **NON_BLANK)
    text: str | None = Field(default=None, max_length=1600, pattern=NUL_FREE)
    update_id: UUID | None = None


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
    content: NotificationContent = Field(default_factory=NotificationContent)
    scheduled_for: Instant | None = None
    delay_minutes: Annotated[int, Field(ge=0, le=MAX_DELAY_MINUTES), JsonInt] | None = None

    @model_validator(mode="after")
    def _one_way_to_schedule(self):
        if self.scheduled_for is not None and self.delay_minutes is not None:
            raise ValueError("give scheduled_for or delay_minutes, not both")
        return self


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
    delivery_outcome: OutcomeName | None = Field(
        default=None, description="What became of a sent email, from the provider's events"
    )
    delivery_outcome_at: datetime | None = None
    delivery_reason: str | None = Field(default=None, description="The provider's words")
    #: The ``X-Request-ID`` of the request that created the job.
    request_id: str | None = None
    segments: int | None = Field(
        default=None, description="SMS segments a sent text took (GSM-7 or UCS-2)"
    )


class JobAccepted(BaseModel):
    success: bool
    jobId: UUID
    status: Literal["queued", "pending"]
    statusCode: int
    message: str
    job: Job


KindName = Literal[tuple(k.value for k in JobKind)]  # type: ignore[valid-type]


class JobFilter(RequestModel):
    """Which jobs: each field given narrows the match (all of them: every job)."""

    status: StatusName | None = None
    kind: KindName | None = None
    delivery_method: MethodName | None = None
    notification_type: NotificationTypeName | None = None
    recipient_id: UUID | None = None
    group_id: UUID | None = None
    update_id: UUID | None = Field(default=None, description="The jobs of an update's fan-out")
    delivery_outcome: OutcomeName | None = None
    request_id: str | None = Field(
        default=None,
        max_length=128,
        description="The originating request: the X-Request-ID of the request that created "
        "the jobs (a bulk request's jobs share it)",
    )
    to: str | None = Field(default=None, min_length=1, max_length=320, description="The address")
    created_after: Instant | None = Field(default=None, description="Created at or after")
    created_before: Instant | None = Field(default=None, description="Created before")


class JobListQuery(JobFilter):
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
    events: list[EmailEventOut] = Field(default_factory=list)


class BulkActionRequest(JobFilter):
    """Retry every failed job the filter matches (its content not yet scrubbed), or cancel
    every waiting one (``pending``/``queued``); ``dry_run`` only counts them."""

    dry_run: bool = False


class BulkActionOut(BaseModel):
    id: UUID | None = Field(description="None for a dry run")
    action: Literal["retry", "cancel"]
    status: Literal["dry_run", "running", "done", "failed"]
    filters: dict
    matched: int = Field(description="Jobs the filter matched when asked")
    acted: int = Field(description="Jobs retried or cancelled so far")
    requested_by: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class BulkActionAnswer(BaseModel):
    action: BulkActionOut
