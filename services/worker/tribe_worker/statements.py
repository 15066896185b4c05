"""The statements every delivered email runs, the claim and the record of its send, as SQL
written once instead of put together by peewee's query builder each time.

Building them cost about 0.3 ms of worker CPU each, per email (the e2e bench's profile). On
PostgreSQL they are prepared statements (:class:`tribe_shared.db.Prepared`), parsed and planned
once per connection for any number of jobs (the ids travel as one array); on SQLite, whose
driver keeps compiled statements itself, their text is cached per number of jobs. Values still
pass through each field's own ``db_value``/``python_value``, so they are written and read
exactly as peewee writes and reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from tribe_shared.contract import CLAIMABLE_STATUSES, DeliveryStatus, JobStatus
from tribe_shared.db import Prepared, Statement, database, execute_together, is_postgres
from tribe_shared.models import DeliveryLog, NotificationJob, new_ids

#: What delivering a claimed job reads: the claim returns only these columns.
CLAIMED_FIELDS = (
    NotificationJob.id,
    NotificationJob.kind,
    NotificationJob.status,
    NotificationJob.recipient,
    NotificationJob.digest_schedule,
    NotificationJob.digest_period,
    NotificationJob.to_email,
    NotificationJob.delivery_method,
    NotificationJob.content,
    NotificationJob.batch_key,
    NotificationJob.attempts,
    NotificationJob.retry_count,
)

_JOBS = NotificationJob._meta.table_name
_LOGS = DeliveryLog._meta.table_name
#: Batch sizes whose SQL is kept (SQLite): individual emails are all 1, bulk batches vary.
_CACHED_SIZES = 64

_RETURNING = ", ".join(f'"{field.column_name}"' for field in CLAIMED_FIELDS)
_PG_CLAIM = Prepared(
    "tribe_claim",
    ("text", "timestamp", "uuid[]", "text[]", "timestamp"),
    f'UPDATE "{_JOBS}" SET "status" = $1, "claimed_at" = $2, "attempts" = "attempts" + 1 '
    f'WHERE "id" = ANY($3) AND "status" = ANY($4) AND "scheduled_for" <= $5 RETURNING {_RETURNING}',
)
_PG_LOG_SENT = Prepared(
    "tribe_log_sent",
    ("uuid[]", "uuid[]", "integer[]", "text", "text", "text", "integer", "timestamp"),
    f'INSERT INTO "{_LOGS}" ("id", "job_id", "attempt", "provider", "provider_message_id", '
    '"status", "error", "duration_ms", "created_at") '
    "SELECT id, job_id, attempt, $4, $5, $6, NULL, $7, $8 "
    "FROM unnest($1, $2, $3) AS t(id, job_id, attempt)",
)
_PG_MARK_SENT = Prepared(
    "tribe_mark_sent",
    ("text", "text", "timestamp", "uuid[]", "text"),
    f'UPDATE "{_JOBS}" SET "status" = $1, "message_id" = $2, "processed_at" = $3, '
    '"failure_reason" = NULL WHERE "id" = ANY($4) AND "status" = $5',
)


def claim(job_ids: Sequence[UUID], now: datetime, due_by: datetime) -> list[NotificationJob]:
    """Atomically move the claimable jobs due by ``due_by`` to ``processing``; return them."""
    if not job_ids:
        return []
    job = NotificationJob
    ids = [job.id.db_value(job_id) for job_id in job_ids]
    statuses = [status.value for status in CLAIMABLE_STATUSES]
    processing, claimed_at = JobStatus.PROCESSING.value, job.claimed_at.db_value(now)
    due = job.scheduled_for.db_value(due_by)
    if is_postgres():
        statement = _PG_CLAIM.bind([processing, claimed_at, ids, statuses, due])
    else:
        params = [processing, claimed_at, *ids, *statuses, due]
        statement = Statement(_claim(len(job_ids), database.param), params)
    rows = database.execute_sql(*statement).fetchall()
    return [
        NotificationJob(
            __no_default__=True,
            **{f.name: f.python_value(v) for f, v in zip(CLAIMED_FIELDS, row, strict=True)},
        )
        for row in rows
    ]


def record_sent(
    jobs: Sequence[NotificationJob],
    provider: str,
    message_id: str,
    duration_ms: int,
    now,
    *,
    also: Sequence = (),
) -> None:
    """One ``sent`` delivery-log row per job and the jobs ``sent``, all or none, with ``also``
    (queries that belong with the send, such as a digest closing its window)."""
    ids = [NotificationJob.id.db_value(job.id) for job in jobs]
    sent, processing = JobStatus.SENT.value, JobStatus.PROCESSING.value
    at, message_id = NotificationJob.processed_at.db_value(now), message_id or None
    if is_postgres():
        log = [
            [DeliveryLog.id.db_value(log_id) for log_id in new_ids(len(jobs))],
            ids,
            [job.attempts for job in jobs],
            provider,
            message_id,
            DeliveryStatus.SENT.value,
            duration_ms,
            at,
        ]
        execute_together(
            _PG_LOG_SENT.bind(log),
            _PG_MARK_SENT.bind([sent, message_id, at, ids, processing]),
            *also,
        )
        return
    logs = [
        DeliveryLog(
            job=job.id,
            attempt=job.attempts,
            provider=provider,
            provider_message_id=message_id,
            status=DeliveryStatus.SENT.value,
            error=None,
            duration_ms=duration_ms,
            created_at=now,
        )
        for job in jobs
    ]
    params = [sent, message_id, at, *ids, processing]
    execute_together(
        Statement(*DeliveryLog.insert_sql(logs)),
        Statement(_mark_sent(len(jobs), database.param), params),
        *also,
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _claim(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    statuses = ", ".join([param] * len(CLAIMABLE_STATUSES))
    return (
        f'UPDATE "{_JOBS}" SET "status" = {param}, "claimed_at" = {param}, '
        f'"attempts" = "attempts" + 1 '
        f'WHERE "id" IN ({ids}) AND "status" IN ({statuses}) AND "scheduled_for" <= {param} '
        f"RETURNING {_RETURNING}"
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _mark_sent(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    return (
        f'UPDATE "{_JOBS}" SET "status" = {param}, "message_id" = {param}, '
        f'"processed_at" = {param}, "failure_reason" = NULL '
        f'WHERE "id" IN ({ids}) AND "status" = {param}'
    )
