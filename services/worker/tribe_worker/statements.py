"""The two statements every delivered email runs, the claim and the record of its send, as SQL
prebuilt once per number of jobs instead of put together by peewee's query builder each time.

Building them cost about 0.3 ms of worker CPU each, per email (the e2e bench's profile). Their
text depends only on how many jobs they touch and on the database's placeholder, so it is
cached; values still pass through each field's own ``db_value``/``python_value``, so they are
written and read exactly as peewee writes and reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from uuid import UUID

from tribe_shared.contract import CLAIMABLE_STATUSES, DeliveryStatus, JobStatus
from tribe_shared.db import Statement, database, execute_together
from tribe_shared.models import DeliveryLog, NotificationJob

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
#: Batch sizes whose SQL is kept: individual emails are all 1, bulk batches vary.
_CACHED_SIZES = 64


def claim(job_ids: Sequence[UUID], now: datetime, due_by: datetime) -> list[NotificationJob]:
    """Atomically move the claimable jobs due by ``due_by`` to ``processing``; return them."""
    if not job_ids:
        return []
    job = NotificationJob
    params = [
        JobStatus.PROCESSING.value,
        job.claimed_at.db_value(now),
        *[job.id.db_value(job_id) for job_id in job_ids],
        *[status.value for status in CLAIMABLE_STATUSES],
        job.scheduled_for.db_value(due_by),
    ]
    rows = database.execute_sql(_claim(len(job_ids), database.param), params).fetchall()
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
    job = NotificationJob
    params = [
        JobStatus.SENT.value,
        message_id or None,
        job.processed_at.db_value(now),
        *[job.id.db_value(j.id) for j in jobs],
        JobStatus.PROCESSING.value,
    ]
    execute_together(
        Statement(*DeliveryLog.insert_sql(logs)),
        Statement(_mark_sent(len(jobs), database.param), params),
        *also,
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _claim(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    statuses = ", ".join([param] * len(CLAIMABLE_STATUSES))
    returning = ", ".join(f'"{field.column_name}"' for field in CLAIMED_FIELDS)
    return (
        f'UPDATE "{_JOBS}" SET "status" = {param}, "claimed_at" = {param}, '
        f'"attempts" = "attempts" + 1 '
        f'WHERE "id" IN ({ids}) AND "status" IN ({statuses}) AND "scheduled_for" <= {param} '
        f"RETURNING {returning}"
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _mark_sent(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    return (
        f'UPDATE "{_JOBS}" SET "status" = {param}, "message_id" = {param}, '
        f'"processed_at" = {param}, "failure_reason" = NULL '
        f'WHERE "id" IN ({ids}) AND "status" = {param}'
    )
