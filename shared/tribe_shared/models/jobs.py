"""Notification jobs (one unit of delivery work each), their indexes, and delivery logs."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField, JSONField, SmallIntegerField, TextField

from tribe_shared.contract import (
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationType,
    Urgency,
)
from tribe_shared.models.base import BaseModel, UTCDateTimeField, utcnow
from tribe_shared.models.digests import DigestSchedule
from tribe_shared.models.family import Group, Recipient, Update, User


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
