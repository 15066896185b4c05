"""``/api/jobs``: the caller's jobs, one job with its delivery log, cancel and retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import falcon
from spectree import Response

from tribe_api import jobs
from tribe_api.access import visible_job
from tribe_api.schemas.errors import Error
from tribe_api.schemas.jobs import JobAccepted, JobCancelled, JobDetail, JobList, JobListQuery
from tribe_api.spec import errors, spec
from tribe_shared.models import DeliveryLog, EmailEvent, NotificationJob
from tribe_shared.outbox import Outbox


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
        "delivery_outcome": job.delivery_outcome,
        "delivery_outcome_at": job.delivery_outcome_at,
        "delivery_reason": job.delivery_reason,
        "request_id": job.request_id,
        "segments": job.segments,
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
        job = visible_job(job_id, req.context.principal)
        now = self._clock()
        resp.media = {"success": True, "job": present_job(jobs.cancel_job(job, now), now)}

    @spec.validate(resp=Response(HTTP_200=JobDetail, HTTP_404=Error, **errors()), tags=["jobs"])
    def on_get(self, req, resp, job_id: UUID):
        """A job with its recipient, every delivery attempt (in attempt order) and the
        provider's events after the send (``events``, the timeline behind
        ``delivery_outcome``)."""
        job = visible_job(job_id, req.context.principal)
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
            "events": timeline(job.id),
        }


def timeline(job_id) -> list[dict]:
    """The provider's events of a job, in the order they happened."""
    events = (
        EmailEvent.select()
        .where(EmailEvent.job_id == job_id)
        .order_by(EmailEvent.occurred_at, EmailEvent.received_at, EmailEvent.sg_event_id)
    )
    return [
        {
            "event": e.event,
            "occurred_at": e.occurred_at,
            "received_at": e.received_at,
            "email": e.email,
            "sg_event_id": e.sg_event_id,
            "sg_message_id": e.sg_message_id,
            "detail": e.detail,
        }
        for e in events
    ]


class JobRetryResource:
    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]):
        self._outbox = outbox
        self._clock = clock

    @spec.validate(
        resp=Response(HTTP_202=JobAccepted, HTTP_404=Error, HTTP_409=Error, **errors(write=True)),
        tags=["jobs"],
    )
    def on_post(self, req, resp, job_id: UUID):
        """Send a failed job again, with a fresh retry budget; its dead letter is removed."""
        job = visible_job(job_id, req.context.principal)
        now = self._clock()
        job = jobs.retry_job(job, self._outbox, now)
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
        filters = query.model_dump(include=set(jobs.FILTERS))
        descending = query.order == "desc"
        page = jobs.list_jobs(
            req.context.principal, filters, query.sort, descending, query.limit, query.offset
        )
        now = self._clock()
        resp.media = {
            "jobs": [present_job(job, now) for job in page.jobs],
            "pagination": {
                "total": min(page.counted, jobs.COUNT_CAP),
                "total_is_exact": page.counted <= jobs.COUNT_CAP,
                "limit": query.limit,
                "offset": query.offset,
                "has_more": page.has_more,
            },
        }
