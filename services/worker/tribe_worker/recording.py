"""Recording what a delivery came to: the job rows and their delivery-log rows.

Every write moves jobs on only from the status the delivery left them in (``processing``, or
``queued`` for an exhausted message), so a job that was cancelled or reaped meanwhile is never
overwritten. Each outcome's writes go together, all or none, in one round trip on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from tribe_shared.contract import DeliveryStatus, JobStatus
from tribe_shared.db import DATABASE_DOWN_ERRORS, database, is_unreachable
from tribe_shared.models import DeliveryLog, NotificationJob
from tribe_shared.sql.delivery import ClaimedJob, record_sent
from tribe_shared.sql.run import execute_together

#: Pause between two tries at recording an outcome while the database is unreachable.
RECORD_RETRY_SECONDS = 0.5

_JOB = NotificationJob


def patiently(
    write: Callable[[], object],
    patience: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``write``; while the database is unreachable, try again for up to ``patience`` s.

    The provider has already acted. Giving up leaves the job ``processing``, and once its lease
    runs out the reaper hands it over again: an email sent twice. Waiting out a short database
    outage here keeps that duplicate away (SendGrid has no idempotency key to do it for us).
    """
    deadline = monotonic() + patience
    while True:
        try:
            write()
            return
        except DATABASE_DOWN_ERRORS as exc:
            if not is_unreachable(exc) or monotonic() >= deadline:
                raise
            # A broken connection goes back to the pool to be discarded; the next try connects.
            with contextlib.suppress(*DATABASE_DOWN_ERRORS):
                database.close()
            sleep(RECORD_RETRY_SECONDS)


def _processing(jobs: Sequence[ClaimedJob]):
    return _JOB.id.in_([job.id for job in jobs]), _JOB.status == JobStatus.PROCESSING


def _logs(jobs, provider: str, now, status, duration_ms, error=None) -> list[dict]:
    return [
        {
            "job": job.id,
            "attempt": job.attempts,
            "provider": provider,
            "provider_message_id": None,
            "status": status,
            "error": error,
            "duration_ms": duration_ms,
            "created_at": now,
        }
        for job in jobs
    ]


def skipped(jobs: Sequence[ClaimedJob], reason: str, now: datetime, also: Sequence = ()) -> None:
    """Claimed jobs had nothing to send: ``skipped``, with the statements that go with it."""
    execute_together(
        _JOB.update(status=JobStatus.SKIPPED, failure_reason=reason, processed_at=now).where(
            *_processing(jobs)
        ),
        *also,
    )


def released(jobs: Sequence[ClaimedJob], now: datetime) -> None:
    """Undo a claim: back to ``queued`` as of ``now``, the attempt not counted."""
    _JOB.update(
        status=JobStatus.QUEUED,
        claimed_at=None,
        queued_at=now,
        attempts=_JOB.attempts - 1,
    ).where(*_processing(jobs)).execute()


def sent(
    jobs: Sequence[ClaimedJob],
    provider: str,
    message_id: str,
    duration_ms: int,
    now: datetime,
    *,
    also: Sequence = (),
    patience: float = 0.0,
) -> None:
    """The provider accepted the jobs: ``sent`` with its message id, and a log row each."""
    patiently(
        lambda: record_sent(jobs, provider, message_id, duration_ms, now, also=also), patience
    )


def failed(
    jobs: Sequence[ClaimedJob],
    provider: str,
    reason: str,
    duration_ms: int,
    now: datetime,
    *,
    transient: bool,
    patience: float = 0.0,
) -> None:
    """A failed attempt: back to ``queued`` for a retry (transient), else ``failed``."""
    if transient:
        status = DeliveryStatus.TRANSIENT_FAILURE
        changes = {
            "status": JobStatus.QUEUED,
            "queued_at": now,
            "retry_count": _JOB.retry_count + 1,
            "failure_reason": reason,
        }
    else:
        status = DeliveryStatus.PERMANENT_FAILURE
        changes = {"status": JobStatus.FAILED, "failure_reason": reason, "processed_at": now}
    logs = _logs(jobs, provider, now, status, duration_ms, error=reason)
    patiently(
        lambda: execute_together(
            DeliveryLog.insert_many(logs), _JOB.update(**changes).where(*_processing(jobs))
        ),
        patience,
    )


def paused(
    jobs: Sequence[ClaimedJob],
    provider: str,
    reason: str,
    duration_ms: int,
    now: datetime,
    *,
    patience: float = 0.0,
) -> None:
    """The provider refused our credentials: the attempt is logged, and the jobs go back to
    ``queued`` without spending a retry (it is no fault of theirs)."""
    logs = _logs(jobs, provider, now, DeliveryStatus.TRANSIENT_FAILURE, duration_ms, reason)
    patiently(
        lambda: execute_together(
            DeliveryLog.insert_many(logs),
            _JOB.update(status=JobStatus.QUEUED, queued_at=now, failure_reason=reason).where(
                *_processing(jobs)
            ),
        ),
        patience,
    )


def exhausted(
    job_ids: Sequence[UUID], retries: int, dead_letter: str | None, now: datetime
) -> list[NotificationJob]:
    """Fail the ``queued`` jobs whose message ran out of retries; return the ones failed.

    ``dead_letter`` locates their dead-lettered message, for a manual retry to remove.
    """
    jobs = _JOB.select().where(_JOB.id.in_(list(job_ids)), _JOB.status == JobStatus.QUEUED)
    failed_now = []
    for job in jobs:
        reason = f"Retries exhausted after {retries + 1} attempts: {job.failure_reason or ''}"
        changes = {
            "status": JobStatus.FAILED,
            "failure_reason": reason.strip(),
            "processed_at": now,
            "dead_letter": dead_letter,
        }
        still_queued = (_JOB.id == job.id) & (_JOB.status == JobStatus.QUEUED)
        if _JOB.update(**changes).where(still_queued).execute():
            failed_now.append(job)
    return failed_now
