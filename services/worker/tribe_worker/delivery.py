"""Delivering email jobs: claim, render, send, record. Plain functions the actors call.

A job is claimed by an atomic status transition (``pending``/``queued`` → ``processing``), so a
message delivered twice, or a stale one for a cancelled job, sends nothing. Every attempt writes a
delivery-log row. A transient failure puts the job back to ``queued`` and asks Dramatiq for a
retry with exponential backoff; a permanent one fails the job at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from dramatiq.common import compute_backoff

from tribe_shared.contract import CLAIMABLE_STATUSES, DeliveryStatus, JobStatus
from tribe_shared.db import database
from tribe_shared.models import DeliveryLog, NotificationJob
from tribe_worker.emails.providers import (
    Addressee,
    DeliveryError,
    EmailProvider,
    RenderedEmail,
)
from tribe_worker.emails.render import RenderError, render_email

log = logging.getLogger(__name__)

#: A job may be claimed this long before its ``scheduled_for`` (broker delays are not exact).
EARLY_CLAIM_SLACK = timedelta(seconds=5)
#: Longest wait between two attempts.
MAX_BACKOFF_MS = 60 * 60 * 1000


@dataclass(frozen=True)
class Delivery:
    """What delivering needs: the provider, the sender address, a clock and the retry base."""

    provider: EmailProvider
    sender: str
    clock: Callable[[], datetime]
    backoff_ms: int


def claim_jobs(job_ids: Sequence[UUID], now: datetime) -> list[NotificationJob]:
    """Atomically move claimable, due jobs to ``processing``; return the ones this call won."""
    query = (
        NotificationJob.update(
            status=JobStatus.PROCESSING,
            claimed_at=now,
            attempts=NotificationJob.attempts + 1,
        )
        .where(
            NotificationJob.id.in_(list(job_ids)),
            NotificationJob.status.in_(list(CLAIMABLE_STATUSES)),
            NotificationJob.scheduled_for <= now + EARLY_CLAIM_SLACK,
        )
        .returning(NotificationJob)
    )
    return list(query.execute())


def deliver_emails(job_ids: Sequence[UUID], delivery: Delivery) -> None:
    """Claim the jobs, send their emails (identical contents in one provider call), record it.

    Raises :class:`dramatiq.Retry` after recording when any job hit a transient failure; the
    retried message re-claims only the jobs still waiting.
    """
    jobs = claim_jobs(job_ids, delivery.clock())
    retry_after_ms: list[int] = []
    for group in _by_content(jobs):
        try:
            email = _render(group[0])
        except RenderError as exc:
            _record_failure(group, delivery, DeliveryError(str(exc), transient=False), 0)
            continue
        started = time.perf_counter()
        try:
            message_id = delivery.provider.send(
                email, delivery.sender, [Addressee(job.to_email, job.id) for job in group]
            )
        except DeliveryError as exc:
            duration_ms = int((time.perf_counter() - started) * 1000)
            _record_failure(group, delivery, exc, duration_ms)
            if exc.transient:
                retry_after_ms.append(_backoff_ms(group, delivery, exc))
            continue
        duration_ms = int((time.perf_counter() - started) * 1000)
        _record_success(group, delivery, message_id, duration_ms)
    if retry_after_ms:
        raise dramatiq.Retry(delay=max(retry_after_ms))


def mark_exhausted(job_ids: Sequence[UUID], retries: int, clock: Callable[[], datetime]) -> int:
    """Fail jobs whose retries ran out (the ``on_retry_exhausted`` callback); return how many."""
    now = clock()
    jobs = NotificationJob.select().where(
        NotificationJob.id.in_(list(job_ids)), NotificationJob.status == JobStatus.QUEUED
    )
    failed = 0
    for job in jobs:
        reason = f"Retries exhausted after {retries + 1} attempts: {job.failure_reason or ''}"
        failed += (
            NotificationJob.update(
                status=JobStatus.FAILED, failure_reason=reason.strip(), processed_at=now
            )
            .where(NotificationJob.id == job.id, NotificationJob.status == JobStatus.QUEUED)
            .execute()
        )
    return failed


def _by_content(jobs: list[NotificationJob]) -> list[list[NotificationJob]]:
    groups: dict[str, list[NotificationJob]] = {}
    for job in jobs:
        key = job.batch_key or str(job.id)
        groups.setdefault(key, []).append(job)
    return list(groups.values())


def _render(job: NotificationJob) -> RenderedEmail:
    content = job.content or {}
    return render_email(
        content.get("type", ""), content.get("templateData") or {}, content.get("subject")
    )


def _backoff_ms(group: list[NotificationJob], delivery: Delivery, exc: DeliveryError) -> int:
    retries = max(job.retry_count for job in group)
    _, delay = compute_backoff(retries, factor=delivery.backoff_ms, max_backoff=MAX_BACKOFF_MS)
    if exc.retry_after is not None:
        # Round up: a retry a fraction of a millisecond early is still too early.
        delay = max(delay, math.ceil(exc.retry_after * 1000))
    return delay


def _logs(group, delivery, status, duration_ms, message_id=None, error=None) -> list[dict]:
    now = delivery.clock()
    return [
        {
            "job": job.id,
            "attempt": job.attempts,
            "provider": delivery.provider.name,
            "provider_message_id": message_id,
            "status": status,
            "error": error,
            "duration_ms": duration_ms,
            "created_at": now,
        }
        for job in group
    ]


def _record_success(group, delivery: Delivery, message_id: str, duration_ms: int) -> None:
    ids = [job.id for job in group]
    with database.atomic():
        DeliveryLog.insert_many(
            _logs(group, delivery, DeliveryStatus.SENT, duration_ms, message_id)
        ).execute()
        NotificationJob.update(
            status=JobStatus.SENT,
            message_id=message_id or None,
            processed_at=delivery.clock(),
            failure_reason=None,
        ).where(
            NotificationJob.id.in_(ids), NotificationJob.status == JobStatus.PROCESSING
        ).execute()
    log.info(
        "sent %d email(s) via %s, message id %s", len(group), delivery.provider.name, message_id
    )


def _record_failure(group, delivery, exc: DeliveryError, duration_ms: int) -> None:
    ids = [job.id for job in group]
    if exc.transient:
        status, changes = (
            DeliveryStatus.TRANSIENT_FAILURE,
            {
                "status": JobStatus.QUEUED,
                "retry_count": NotificationJob.retry_count + 1,
                "failure_reason": exc.reason,
            },
        )
    else:
        status, changes = (
            DeliveryStatus.PERMANENT_FAILURE,
            {
                "status": JobStatus.FAILED,
                "failure_reason": exc.reason,
                "processed_at": delivery.clock(),
            },
        )
    with database.atomic():
        DeliveryLog.insert_many(
            _logs(group, delivery, status, duration_ms, error=exc.reason)
        ).execute()
        NotificationJob.update(**changes).where(
            NotificationJob.id.in_(ids), NotificationJob.status == JobStatus.PROCESSING
        ).execute()
    log.warning("%s for %d job(s): %s", status, len(group), exc.reason)
