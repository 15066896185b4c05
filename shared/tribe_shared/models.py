"""The peewee models: users, groups, recipients, updates, jobs, delivery logs, digest schedules.

Keys are UUIDs; every timestamp is an aware UTC ``datetime`` in Python and a naive UTC value in
the database (:class:`UTCDateTimeField`), so SQLite and PostgreSQL sort and compare alike.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    SmallIntegerField,
    TextField,
    UUIDField,
)

from tribe_shared.contract import (
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationType,
    Urgency,
)
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


class User(BaseModel):
    """A Tribe user (a parent), known by the ``sub`` of their token."""

    email = CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "users"


class Group(BaseModel):
    owner = ForeignKeyField(User, backref="groups", on_delete="CASCADE")
    name = CharField(max_length=200)
    #: The family the group hears from, as its update and digest emails name it ("The Smiths":
    #: from "The Smiths on Tribe"); None: the sender's own name.
    family_name = CharField(max_length=100, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "groups"


class Recipient(BaseModel):
    owner = ForeignKeyField(User, backref="recipients", on_delete="CASCADE")
    name = CharField(max_length=200)
    email = CharField(max_length=320, null=True)
    phone = CharField(max_length=32, null=True)
    relationship = CharField(max_length=100, null=True)
    muted_until = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "recipients"


class GroupMembership(BaseModel):
    group = ForeignKeyField(Group, backref="memberships", on_delete="CASCADE")
    recipient = ForeignKeyField(Recipient, backref="memberships", on_delete="CASCADE")
    created_at = UTCDateTimeField(default=utcnow)
    #: The channels (:class:`~tribe_shared.contract.DeliveryMethod`) the recipient hears from
    #: the group on, each its own job (migration 0012); None: email alone.
    channels = JSONField(null=True)

    class Meta:
        table_name = "group_memberships"
        indexes = ((("group", "recipient"), True),)


class Update(BaseModel):
    """A memory a parent posted to a group: a photo, a milestone, a text, a video."""

    owner = ForeignKeyField(User, backref="updates", on_delete="CASCADE")
    group = ForeignKeyField(Group, backref="updates", on_delete="CASCADE")
    content_type = CharField(max_length=20)
    title = CharField(max_length=300, null=True)
    body = TextField(default="")
    media_urls = JSONField(default=list)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "updates"
        indexes = ((("group", "created_at"), False),)


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


class NotificationJob(BaseModel):
    """One unit of delivery work; the row is the truth, broker messages carry only its id."""

    kind = CharField(max_length=20, default=JobKind.EMAIL)
    status = CharField(max_length=20, default=JobStatus.PENDING)
    #: Whose job it is: the owner of its recipient, or whoever sent it.
    owner = ForeignKeyField(User, null=True, backref="owned_jobs", on_delete="CASCADE", index=False)
    # The optional references are indexed where they are set (the partial indexes below).
    created_by = ForeignKeyField(User, null=True, backref="jobs", on_delete="SET NULL", index=False)
    recipient = ForeignKeyField(
        Recipient, null=True, backref="jobs", on_delete="SET NULL", index=False
    )
    group = ForeignKeyField(Group, null=True, backref="jobs", on_delete="SET NULL", index=False)
    family_update = ForeignKeyField(
        Update,
        null=True,
        column_name="update_id",
        backref="jobs",
        on_delete="SET NULL",
        index=False,
    )
    #: Indexed by the unique (digest_schedule, digest_period) key below.
    digest_schedule = ForeignKeyField(
        DigestSchedule, null=True, backref="jobs", on_delete="SET NULL", index=False
    )
    #: The run of the schedule a digest job is for (the ``next_digest_scheduled`` that fell due):
    #: unique per schedule, so a repeated or doubled scheduler tick cannot make a second job.
    digest_period = UTCDateTimeField(null=True)
    to_email = CharField(max_length=320, null=True)
    notification_type = CharField(max_length=20, default=NotificationType.IMMEDIATE)
    urgency = CharField(max_length=10, default=Urgency.NORMAL)
    delivery_method = CharField(max_length=10, default=DeliveryMethod.EMAIL)
    #: What to send: for emails ``{"type", "subject", "templateData"}``.
    content = JSONField(default=dict)
    #: Jobs accepted together with identical content share a key and travel as one batch.
    batch_key = CharField(max_length=64, null=True)
    scheduled_for = UTCDateTimeField(default=utcnow)
    created_at = UTCDateTimeField(default=utcnow)
    queued_at = UTCDateTimeField(null=True)
    claimed_at = UTCDateTimeField(null=True)
    processed_at = UTCDateTimeField(null=True)
    #: Deliveries started (claims); counts attempts even when a worker dies mid-send.
    attempts = IntegerField(default=0)
    #: Transient failures (each retried until MAX_RETRIES is used up).
    retry_count = IntegerField(default=0)
    #: Times the reaper took the job back because its worker died mid-delivery.
    lease_losses = IntegerField(default=0)
    message_id = CharField(max_length=200, null=True)
    failure_reason = TextField(null=True)
    #: ``<queue>:<redis message id>`` of the dead-lettered message of an exhausted job.
    dead_letter = CharField(max_length=200, null=True)
    #: What became of a ``sent`` email (:class:`~tribe_shared.contract.DeliveryOutcome`), from
    #: the provider's events; when, and the provider's reason. None: no event yet.
    delivery_outcome = CharField(max_length=12, null=True)
    delivery_outcome_at = UTCDateTimeField(null=True)
    delivery_reason = TextField(null=True)
    #: The ``X-Request-ID`` of the API request that created the job (migration 0010).
    request_id = CharField(max_length=128, null=True)
    #: When retention blanked the job's address and personal content; None until then.
    scrubbed_at = UTCDateTimeField(null=True)
    #: SMS segments a text message took (GSM-7: 160/153 characters, UCS-2: 70/67); migration
    #: 0012. None: not a text message, or not sent yet.
    segments = SmallIntegerField(null=True)

    class Meta:
        table_name = "notification_jobs"
        indexes = (
            (("status", "scheduled_for"), False),
            # The job list (GET /api/jobs) reads every sort in index order, for a user (owner
            # first) and for the service role, ties broken by id (status: by creation, then id).
            (("owner", "created_at", "id"), False),
            (("owner", "scheduled_for", "id"), False),
            (("owner", "processed_at", "id"), False),
            (("owner", "status", "created_at", "id"), False),
            (("created_at", "id"), False),
            (("scheduled_for", "id"), False),
            (("processed_at", "id"), False),
            (("status", "created_at", "id"), False),
            # A user's page and count with a notification_type filter (migration 0007).
            (("owner", "notification_type", "created_at", "id"), False),
        )


# The optional references, where set (migration 0006): every lookup asks for a value. The
# recipient and group indexes carry the owner after the id: it never changes their order, but a
# user's filtered page and count are then checked in the index alone.
for _columns, _unique in (
    ((NotificationJob.created_by, NotificationJob.created_at), False),
    ((NotificationJob.family_update,), False),
    (
        (
            NotificationJob.recipient,
            NotificationJob.created_at,
            NotificationJob.id,
            NotificationJob.owner,
        ),
        False,
    ),
    (
        (
            NotificationJob.group,
            NotificationJob.created_at,
            NotificationJob.id,
            NotificationJob.owner,
        ),
        False,
    ),
):
    NotificationJob.add_index(
        NotificationJob.index(
            *_columns,
            unique=_unique,
            name="notification_jobs_" + "_".join(c.column_name for c in _columns),
            where=_columns[0].is_null(False),
        )
    )

# One digest per schedule, run and channel (migration 0012).
NotificationJob.add_index(
    NotificationJob.index(
        NotificationJob.digest_schedule,
        NotificationJob.digest_period,
        NotificationJob.delivery_method,
        unique=True,
        name="notification_jobs_digest_run_channel",
        where=NotificationJob.digest_schedule.is_null(False),
    )
)

# Jobs by the rare delivery methods (SMS, WhatsApp): email jobs, nearly all, never enter it.
NotificationJob.add_index(
    NotificationJob.index(
        NotificationJob.delivery_method,
        NotificationJob.created_at,
        NotificationJob.id,
        NotificationJob.owner,
        name="notification_jobs_delivery_method_not_email",
        where=NotificationJob.delivery_method != DeliveryMethod.EMAIL.value,
    )
)

# The service role's jobs of a type other than immediate (digests), by creation (migration 0007):
# immediate jobs, most of them, never enter it. A user's type filter has the owner-first index.
NotificationJob.add_index(
    NotificationJob.index(
        NotificationJob.notification_type,
        NotificationJob.created_at,
        NotificationJob.id,
        name="notification_jobs_notification_type_not_immediate",
        where=NotificationJob.notification_type != NotificationType.IMMEDIATE.value,
    )
)


# Jobs by delivery outcome, in creation order (migration 0009): ``GET /api/jobs?delivery_outcome=``
# for a user and for the service role. Jobs without one (not sent, or no event yet) stay out.
for _columns in (
    (NotificationJob.owner, NotificationJob.delivery_outcome),
    (NotificationJob.delivery_outcome,),
):
    NotificationJob.add_index(
        NotificationJob.index(
            *_columns,
            NotificationJob.created_at,
            NotificationJob.id,
            name="notification_jobs_" + "_".join(c.column_name for c in _columns) + "_created_at",
            where=NotificationJob.delivery_outcome.is_null(False),
        )
    )
# The console's and the list's filters by originating request and by address, in creation order
# (migration 0011); jobs without one stay out.
for _column in (NotificationJob.request_id, NotificationJob.to_email):
    NotificationJob.add_index(
        NotificationJob.index(
            _column,
            NotificationJob.created_at,
            NotificationJob.id,
            name=f"notification_jobs_{_column.column_name}_created_at",
            where=_column.is_null(False),
        )
    )
# The finished jobs retention has yet to scrub, oldest first (migration 0010): a scrubbed job
# leaves it, so each batch starts where the last one ended.
NotificationJob.add_index(
    NotificationJob.index(
        NotificationJob.processed_at,
        name="notification_jobs_processed_at_unscrubbed",
        where=NotificationJob.scrubbed_at.is_null(),
    )
)


class DeliveryLog(BaseModel):
    """One delivery attempt of a job: what the provider said and how long it took."""

    job = ForeignKeyField(NotificationJob, backref="delivery_logs", on_delete="CASCADE")
    attempt = IntegerField()
    provider = CharField(max_length=32)
    provider_message_id = CharField(max_length=200, null=True)
    status = CharField(max_length=20)
    error = TextField(null=True)
    duration_ms = IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "notification_delivery_logs"
        indexes = ((("job", "attempt"), False),)


class EmailEvent(Model):
    """One event the email provider reported (SendGrid's event webhook), kept as received.

    Keyed by the provider's own event id, so a batch posted again stores nothing twice. The
    job is a plain column, not a foreign key: events of jobs that no longer exist are kept.
    """

    sg_event_id = CharField(max_length=100, primary_key=True)
    job_id = UUIDField(null=True, index=False)
    event = CharField(max_length=32)
    email = CharField(max_length=320)
    occurred_at = UTCDateTimeField()
    received_at = UTCDateTimeField(default=utcnow)
    sg_message_id = CharField(max_length=200, null=True)
    #: What the provider said besides: reason, response, bounce type, status, url...
    detail = JSONField(default=dict)

    class Meta:
        database = database
        table_name = "email_events"


EmailEvent.add_index(
    EmailEvent.index(
        EmailEvent.job_id,
        EmailEvent.occurred_at,
        name="email_events_job_id_occurred_at",
        where=EmailEvent.job_id.is_null(False),
    )
)


# A number's inbound messages, latest first (migration 0012): WhatsApp's 24-hour session.
EmailEvent.add_index(
    EmailEvent.index(
        EmailEvent.email,
        EmailEvent.occurred_at,
        name="email_events_inbound_email_occurred_at",
        where=EmailEvent.event == "inbound",
    )
)


class Suppression(Model):
    """An address's standing with the provider: suppressed (``suppressed_at`` set, no more
    messages to it) or watched. The address is an email address, or a phone number as Twilio
    sees it (``+15551234567`` for SMS, ``whatsapp:+15551234567``), suppressed by a STOP
    (migration 0012). Blocks are counted (``soft_bounces``) until a delivery clears them."""

    #: Lower case: addresses are compared that way.
    email = CharField(max_length=320, primary_key=True)
    reason = CharField(max_length=20, null=True)
    #: The provider's words, or what the recipient did.
    detail = TextField(null=True)
    #: Where it came from: ``sendgrid:<event>``, ``unsubscribe`` or ``twilio:<keyword>``.
    source = CharField(max_length=40, null=True)
    soft_bounces = IntegerField(default=0)
    suppressed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        database = database
        table_name = "email_suppressions"
        indexes = ((("suppressed_at",), False),)


class GroupUnsubscribe(BaseModel):
    """A recipient who unsubscribed from one group's emails (one-click, or the page).

    The recipient gets no update or digest email of the group until it is undone, whatever
    their memberships and schedules say. ``paused_schedule`` is the digest schedule the
    unsubscribe paused, resumed by the undo.
    """

    recipient = ForeignKeyField(Recipient, backref="unsubscribes", on_delete="CASCADE", index=False)
    group = ForeignKeyField(Group, backref="unsubscribes", on_delete="CASCADE")
    paused_schedule = ForeignKeyField(
        DigestSchedule, null=True, backref="unsubscribes", on_delete="SET NULL", index=False
    )
    source = CharField(max_length=20)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "group_unsubscribes"
        indexes = ((("recipient", "group"), True),)


class BulkAction(BaseModel):
    """A retry or cancel of every job a filter matches (``POST /api/jobs/retry`` / ``cancel``,
    the console's bulk buttons), done by the worker in bounded batches: who asked, what for,
    and how far it has got."""

    action = CharField(max_length=10)
    #: The filter, as :func:`tribe_shared.job_filters.to_json` stores it.
    filters = JSONField(default=dict)
    #: Who asked: the operator's name and key, or the caller's user id.
    requested_by = CharField(max_length=200)
    #: ``running`` until every batch is done, then ``done`` (or ``failed``, with ``error``).
    status = CharField(max_length=10, default="running")
    #: Jobs the filter matched when the action was asked for; ``acted``: retried or cancelled.
    matched = IntegerField(default=0)
    acted = IntegerField(default=0)
    error = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "bulk_actions"
        indexes = ((("created_at",), False),)


class BulkActionJob(BaseModel):
    """One job a bulk action retried or cancelled: the record of what was done to it."""

    action = ForeignKeyField(BulkAction, backref="jobs", on_delete="CASCADE", index=False)
    #: A plain column: the record outlives the job (retention deletes old jobs).
    job_id = UUIDField()
    acted_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "bulk_action_jobs"
        indexes = ((("action", "job_id"), True),)


class IdempotencyKey(BaseModel):
    """The first answer to a request sent with an ``Idempotency-Key`` header, kept for 24 hours.

    One row per (caller, key): the same key from two callers is two rows. The row is written in
    the transaction that writes what the request created, so the answer and its jobs commit
    together, or neither does (a 4xx or 5xx leaves no row: the client may try again with the
    same key). Deleted by retention once ``expires_at`` has passed.
    """

    #: Who sent it: the token's role and subject, ``authenticated:<uuid>``, ``service_role:``.
    caller = CharField(max_length=100)
    key = CharField(max_length=255)
    #: SHA-256 (hex) of the method, path and raw body: the same key with another request is a 422.
    request_hash = CharField(max_length=64)
    status_code = SmallIntegerField(null=True)
    #: The answer's body as sent (JSON text), and its ``Location`` header when it had one.
    response_body = TextField(null=True)
    location = TextField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField(index=True)

    class Meta:
        table_name = "idempotency_keys"
        indexes = ((("caller", "key"), True),)


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


# --- Content (issue #18 items 5-7): columns of migration 0013_content -------------------------
# Added here, in their own section, rather than in the classes above: a recipient's language
# and a group's opt-in to AI summaries.

#: The recipient's locale (``es``, ``es-MX``): the language of their emails (English when we do
#: not write theirs) and how their dates are written. None: English.
Recipient._meta.add_field("locale", CharField(max_length=35, null=True))
#: The group asked for an AI-written summary at the top of its digests (off by default).
Group._meta.add_field("ai_summary", BooleanField(default=False))
