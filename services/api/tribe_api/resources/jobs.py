"""``GET /api/jobs/{id}``: a job, its recipient and its delivery log, for its owner only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import dramatiq
import falcon
from peewee import JOIN
from spectree import Response

from tribe_api.auth import Principal
from tribe_api.family import owned
from tribe_api.schemas import Error, JobAccepted, JobCancelled, JobDetail, JobList, JobListQuery
from tribe_api.spec import errors, spec
from tribe_shared.broker import forget_dead_letter, hand_over
from tribe_shared.contract import CLAIMABLE_STATUSES, JobStatus
from tribe_shared.models import DeliveryLog, Group, NotificationJob, Recipient


def find_visible_job(job_id: UUID, principal: Principal) -> NotificationJob:
    """The job if the caller may see it (sent by them, for their recipient, or service role).

    Anything else is a 404 that does not reveal whether the job exists.
    """
    job = (
        NotificationJob.select(NotificationJob, Recipient)
        .join(Recipient, JOIN.LEFT_OUTER, on=(NotificationJob.recipient == Recipient.id))
        .where(NotificationJob.id == job_id)
        .first()
    )
    if job is not None and (principal.is_service or job.owner_id == principal.user_id):
        return job
    raise falcon.HTTPNotFound(title="Not found", description=f"No job {job_id}")


#: ``pagination.total`` is exact up to this many matching jobs (``total_is_exact`` says which).
COUNT_CAP = 10_000


def visible_jobs(principal: Principal):
    """Jobs the caller may see: their own (for their recipients or sent by them); all: service."""
    query = NotificationJob.select()
    if principal.is_service:
        return query
    return query.where(NotificationJob.owner == principal.user_id)


#: What each sort orders by: the field, then ties broken stably (status: newest first, when
#: descending). Every key reads in the order of an index, with or without the owner before it.
SORT_KEYS = {
    "created_at": (NotificationJob.created_at, NotificationJob.id),
    "scheduled_for": (NotificationJob.scheduled_for, NotificationJob.id),
    "processed_at": (NotificationJob.processed_at, NotificationJob.id),
    "status": (NotificationJob.status, NotificationJob.created_at, NotificationJob.id),
}


def sorted_parts(jobs, sort: str, descending: bool) -> list:
    """``jobs`` in the order of ``sort``: queries to read one after the other, each in the order
    of an index.

    One query, except for ``processed_at``: jobs not yet processed have none and come last in
    either order, which no single index order gives; they are a second part, after the
    processed ones, so neither part is ever sorted in full.
    """
    keys = [key.desc() if descending else key.asc() for key in SORT_KEYS[sort]]
    if sort != "processed_at":
        return [jobs.order_by(*keys)]
    processed_at = NotificationJob.processed_at
    return [
        jobs.where(processed_at.is_null(False)).order_by(*keys),
        jobs.where(processed_at.is_null()).order_by(*keys),
    ]


def capped(jobs):
    """The matches to count: counting a huge match exactly costs more than the page, so up to
    one past :data:`COUNT_CAP`."""
    return jobs.select(NotificationJob.id).limit(COUNT_CAP + 1)


def list_page(jobs, sort: str, descending: bool, limit: int, offset: int) -> list:
    """``limit`` jobs of ``jobs`` from ``offset``, in the order of ``sort``."""
    page: list = []
    parts = sorted_parts(jobs, sort, descending)
    for number, part in enumerate(parts, start=1):
        rows = list(part.limit(limit - len(page)).offset(offset))
        page += rows
        if len(page) == limit or number == len(parts):
            break
        # This part ran out: within the page (the next starts at once) or before it.
        offset = 0 if rows else max(0, offset - part.count())
    return page


def _ms(delta) -> int:
    return int(delta.total_seconds() * 1000)


def present_job(job: NotificationJob, now: datetime) -> dict:
    """The public shape of a job."""
    processing_time = (
        _ms(job.processed_at - job.claimed_at) if job.processed_at and job.claimed_at else None
    )
    return {
        "id": job.id,
        "status": job.status,
        "kind": job.kind,
        "delivery_method": job.delivery_method,
        "notification_type": job.notification_type,
        "urgency": job.urgency,
        "to": job.to_email,
        "recipient_id": job.recipient_id,
        "group_id": job.group_id,
        "update_id": job.update_id,
        "content": job.content,
        "scheduled_for": job.scheduled_for,
        "created_at": job.created_at,
        "queued_at": job.queued_at,
        "processed_at": job.processed_at,
        "processing_time_ms": processing_time,
        "time_until_scheduled_ms": _ms(job.scheduled_for - now),
        "attempts": job.attempts,
        "retry_count": job.retry_count,
        "message_id": job.message_id,
        "failure_reason": job.failure_reason,
    }


def accepted(job: NotificationJob, message: str, now: datetime) -> dict:
    """The 202 body of a job taken on (the shape send-email answers with, plus the job)."""
    return {
        "success": True,
        "jobId": job.id,
        "status": job.status,
        "statusCode": 202,
        "message": message,
        "job": present_job(job, now),
    }


def present_log(log: DeliveryLog) -> dict:
    return {
        "id": log.id,
        "attempt": log.attempt,
        "provider": log.provider,
        "provider_message_id": log.provider_message_id,
        "status": log.status,
        "error": log.error,
        "duration_ms": log.duration_ms,
        "created_at": log.created_at,
    }


class JobResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(
        resp=Response(HTTP_200=JobCancelled, HTTP_404=Error, HTTP_409=Error, **errors(write=True)),
        tags=["jobs"],
    )
    def on_delete(self, req, resp, job_id: UUID):
        """Cancel a job not yet started; it is never sent, even if its message is queued."""
        job = find_visible_job(job_id, req.context.principal)
        now = self._clock()
        cancelled = (
            NotificationJob.update(status=JobStatus.CANCELLED, processed_at=now)
            .where(
                NotificationJob.id == job.id,
                NotificationJob.status.in_(list(CLAIMABLE_STATUSES)),
            )
            .execute()
        )
        job = NotificationJob.get_by_id(job.id)
        if not cancelled:
            raise falcon.HTTPConflict(
                title="Conflict",
                description=f"Only a pending or queued job can be cancelled; it is {job.status}",
            )
        resp.media = {"success": True, "job": present_job(job, now)}

    @spec.validate(resp=Response(HTTP_200=JobDetail, HTTP_404=Error, **errors()), tags=["jobs"])
    def on_get(self, req, resp, job_id: UUID):
        """A job with its recipient and every delivery attempt, in attempt order."""
        job = find_visible_job(job_id, req.context.principal)
        logs = job.delivery_logs.order_by(DeliveryLog.attempt, DeliveryLog.created_at)
        recipient = job.recipient if job.recipient_id is not None else None
        resp.media = {
            "job": present_job(job, self._clock()),
            "recipient": (
                {"id": recipient.id, "name": recipient.name, "relationship": recipient.relationship}
                if recipient is not None
                else None
            ),
            "delivery_logs": [present_log(log) for log in logs],
        }


class JobRetryResource:
    def __init__(self, broker: dramatiq.Broker | None, clock: Callable[[], datetime]):
        self._broker = broker
        self._clock = clock

    @spec.validate(
        resp=Response(HTTP_202=JobAccepted, HTTP_404=Error, HTTP_409=Error, **errors(write=True)),
        tags=["jobs"],
    )
    def on_post(self, req, resp, job_id: UUID):
        """Send a failed job again, with a fresh retry budget; its dead letter is removed."""
        job = find_visible_job(job_id, req.context.principal)
        now = self._clock()
        reset = dict(
            status=JobStatus.PENDING,
            retry_count=0,
            lease_losses=0,
            failure_reason=None,
            processed_at=None,
            claimed_at=None,
            dead_letter=None,
            scheduled_for=now,
        )
        retried = (
            NotificationJob.update(**reset)
            .where(NotificationJob.id == job.id, NotificationJob.status == JobStatus.FAILED)
            .execute()
        )
        if not retried:
            raise falcon.HTTPConflict(
                title="Conflict",
                description=f"Only a failed job can be retried; this one is {job.status}",
            )
        forget_dead_letter(self._broker, job.dead_letter)
        job = NotificationJob.get_by_id(job.id)
        hand_over(self._broker, [job], clock=self._clock)
        resp.status = falcon.HTTP_202
        resp.media = accepted(job, "Job queued for another delivery", now)


class JobsResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(
        query=JobListQuery,
        resp=Response(HTTP_200=JobList, HTTP_404=Error, **errors()),
        tags=["jobs"],
    )
    def on_get(self, req, resp, query: JobListQuery):
        """The caller's jobs, filtered, sorted and paginated.

        A ``recipient_id`` or ``group_id`` that is not the caller's is a 404, as everywhere.
        """
        principal = req.context.principal
        if query.recipient_id is not None:
            owned(Recipient, query.recipient_id, principal, "recipient_id")
        if query.group_id is not None:
            owned(Group, query.group_id, principal, "group_id")
        jobs = visible_jobs(principal)
        for name in ("status", "delivery_method", "notification_type", "recipient_id", "group_id"):
            value = getattr(query, name)
            if value is not None:
                jobs = jobs.where(getattr(NotificationJob, name) == value)
        page = list_page(jobs, query.sort, query.order == "desc", query.limit + 1, query.offset)
        counted = capped(jobs).count()
        now = self._clock()
        resp.media = {
            "jobs": [present_job(job, now) for job in page[: query.limit]],
            "pagination": {
                "total": min(counted, COUNT_CAP),
                "total_is_exact": counted <= COUNT_CAP,
                "limit": query.limit,
                "offset": query.offset,
                "has_more": len(page) > query.limit,
            },
        }
