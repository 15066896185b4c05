"""Operations: bulk retries and cancels, the jobs they acted on, and idempotency keys."""

from __future__ import annotations

from peewee import (
    CharField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    SmallIntegerField,
    TextField,
    UUIDField,
)

from tribe_shared.models.base import BaseModel, UTCDateTimeField, utcnow


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
