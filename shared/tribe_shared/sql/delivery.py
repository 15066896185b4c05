"""The statements every delivered email runs: its claim, and the record of its send."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID

from tribe_shared.contract import CLAIMABLE_STATUSES, DeliveryStatus, JobStatus
from tribe_shared.db import database, is_postgres
from tribe_shared.models import (
    DeliveryLog,
    NotificationJob,
    new_ids,
)
from tribe_shared.sql.run import (
    Prepared,
    Statement,
    column,
    db_value,
    execute_together,
    table,
)

# --- claiming and recording a delivery ------------------------------------------------------


class ClaimedJob(NamedTuple):
    """What delivering a claimed job reads of it: the columns the claim returns."""

    id: UUID
    kind: str
    status: str
    recipient_id: UUID | None
    group_id: UUID | None
    digest_schedule_id: UUID | None
    digest_period: datetime | None
    to_email: str | None
    delivery_method: str
    content: dict
    batch_key: str | None
    attempts: int
    retry_count: int
    request_id: str | None


_J = NotificationJob
#: The claim's RETURNING columns, in the order of :class:`ClaimedJob`.
_CLAIMED = (
    _J.id,
    _J.kind,
    _J.status,
    _J.recipient,
    _J.group,
    _J.digest_schedule,
    _J.digest_period,
    _J.to_email,
    _J.delivery_method,
    _J.content,
    _J.batch_key,
    _J.attempts,
    _J.retry_count,
    _J.request_id,
)
_RETURNING = ", ".join(column(field) for field in _CLAIMED)
_JOBS, _LOGS = table(NotificationJob), table(DeliveryLog)
_LOG_COLUMNS = ", ".join(column(f) for f in DeliveryLog._meta.sorted_fields)
#: Batch sizes whose SQL is kept (SQLite): individual emails are all 1, bulk batches vary.
_CACHED_SIZES = 64

_PG_CLAIM = Prepared(
    "tribe_claim",
    ("text", "timestamp", "uuid[]", "text[]", "timestamp"),
    f'UPDATE {_JOBS} SET "status" = $1, "claimed_at" = $2, "attempts" = "attempts" + 1 '
    f'WHERE "id" = ANY($3) AND "status" = ANY($4) AND "scheduled_for" <= $5 RETURNING {_RETURNING}',
)
_L = DeliveryLog
_LOGGED = (_L.id, _L.job, _L.attempt, _L.provider, _L.provider_message_id, _L.status)
_PG_LOG_SENT = Prepared(
    "tribe_log_sent",
    ("uuid[]", "uuid[]", "integer[]", "text", "text", "text", "integer", "timestamp"),
    f"INSERT INTO {_LOGS} ({', '.join(column(f) for f in _LOGGED)}, "
    f"{column(_L.duration_ms)}, {column(_L.created_at)}) "
    "SELECT id, job_id, attempt, $4, $5, $6, $7, $8 "
    "FROM unnest($1, $2, $3) AS t(id, job_id, attempt)",
)
_PG_MARK_SENT = Prepared(
    "tribe_mark_sent",
    ("text", "text", "timestamp", "uuid[]", "text"),
    f'UPDATE {_JOBS} SET "status" = $1, "message_id" = $2, "processed_at" = $3, '
    '"failure_reason" = NULL WHERE "id" = ANY($4) AND "status" = $5',
)


def claim(job_ids: Sequence[UUID], now: datetime, due_by: datetime) -> list[ClaimedJob]:
    """Atomically move the claimable jobs due by ``due_by`` to ``processing``; return them in
    the order of ``job_ids``."""
    if not job_ids:
        return []
    ids = [_J.id.db_value(job_id) for job_id in job_ids]
    statuses = [status.value for status in CLAIMABLE_STATUSES]
    processing, claimed_at = JobStatus.PROCESSING.value, _J.claimed_at.db_value(now)
    due = _J.scheduled_for.db_value(due_by)
    if is_postgres():
        statement = _PG_CLAIM.bind([processing, claimed_at, ids, statuses, due])
    else:
        params = [processing, claimed_at, *ids, *statuses, due]
        statement = Statement(_claim(len(job_ids), database.param), params)
    rows = database.execute_sql(*statement).fetchall()
    claimed = {
        job.id: job
        for job in (
            ClaimedJob(*(f.python_value(v) for f, v in zip(_CLAIMED, row, strict=True)))
            for row in rows
        )
    }
    return [claimed[job_id] for job_id in job_ids if job_id in claimed]


def record_sent(
    jobs: Sequence[ClaimedJob],
    provider: str,
    message_id: str,
    duration_ms: int,
    now: datetime,
    *,
    also: Sequence = (),
) -> None:
    """One ``sent`` delivery-log row per job and the jobs ``sent``, all or none, with ``also``
    (queries that belong with the send, such as a digest closing its window)."""
    ids = [_J.id.db_value(job.id) for job in jobs]
    sent, processing = JobStatus.SENT.value, JobStatus.PROCESSING.value
    at, message_id = _J.processed_at.db_value(now), message_id or None
    log_ids = [DeliveryLog.id.db_value(log_id) for log_id in new_ids(len(jobs))]
    if is_postgres():
        attempts = [job.attempts for job in jobs]
        log = [log_ids, ids, attempts, provider, message_id, DeliveryStatus.SENT.value]
        execute_together(
            _PG_LOG_SENT.bind([*log, duration_ms, at]),
            _PG_MARK_SENT.bind([sent, message_id, at, ids, processing]),
            *also,
        )
        return
    logs = [
        DeliveryLog(
            id=log_id,
            job=job.id,
            attempt=job.attempts,
            provider=provider,
            provider_message_id=message_id,
            status=DeliveryStatus.SENT.value,
            error=None,
            duration_ms=duration_ms,
            created_at=now,
        )
        for log_id, job in zip(log_ids, jobs, strict=True)
    ]
    fields = DeliveryLog._meta.sorted_fields
    row = "(" + ", ".join([database.param] * len(fields)) + ")"
    log_params = [db_value(f, log.__data__.get(f.name)) for log in logs for f in fields]
    insert_logs = f"INSERT INTO {_LOGS} ({_LOG_COLUMNS}) VALUES " + ", ".join([row] * len(logs))
    mark_sent = _mark_sent(len(jobs), database.param)
    execute_together(
        Statement(insert_logs, log_params),
        Statement(mark_sent, [sent, message_id, at, *ids, processing]),
        *also,
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _claim(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    statuses = ", ".join([param] * len(CLAIMABLE_STATUSES))
    return (
        f'UPDATE {_JOBS} SET "status" = {param}, "claimed_at" = {param}, '
        f'"attempts" = "attempts" + 1 '
        f'WHERE "id" IN ({ids}) AND "status" IN ({statuses}) AND "scheduled_for" <= {param} '
        f"RETURNING {_RETURNING}"
    )


@lru_cache(maxsize=_CACHED_SIZES)
def _mark_sent(count: int, param: str) -> str:
    ids = ", ".join([param] * count)
    return (
        f'UPDATE {_JOBS} SET "status" = {param}, "message_id" = {param}, '
        f'"processed_at" = {param}, "failure_reason" = NULL '
        f'WHERE "id" IN ({ids}) AND "status" = {param}'
    )
