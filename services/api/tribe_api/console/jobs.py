"""The job list (every filter, keyset pages), a job's page with its timeline, and its retry
and cancel (the API's own).
"""

from __future__ import annotations

from uuid import UUID

import falcon
from peewee import JOIN

from tribe_api import jobs as job_service
from tribe_api.console import reads
from tribe_api.console.common import NOTICES, Console, Page, filters_of, log, query_of
from tribe_api.resources.jobs import timeline as events_of
from tribe_shared import job_filters
from tribe_shared.contract import (
    CLAIMABLE_STATUSES,
    DeliveryMethod,
    DeliveryOutcome,
    JobKind,
    JobStatus,
    NotificationType,
)
from tribe_shared.models import DeliveryLog, NotificationJob, Recipient

#: The choices of the job list's select filters.
CHOICES = {
    "status": [s.value for s in JobStatus],
    "kind": [k.value for k in JobKind],
    "delivery_method": [m.value for m in DeliveryMethod],
    "notification_type": [t.value for t in NotificationType],
    "delivery_outcome": [o.value for o in DeliveryOutcome],
}
#: The job list's text filters, with their labels.
TEXT_FILTERS = {
    "to": "Address",
    "request_id": "Originating request (X-Request-ID)",
    "update_id": "Update (its fan-out)",
    "group_id": "Group",
    "recipient_id": "Recipient",
    "created_after": "Created after (UTC)",
    "created_before": "Created before (UTC)",
}


class JobsPage(Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        filters, error = filters_of(req.params)
        cursor = req.get_param("after")
        oldest_first = req.get_param("order") == "asc"
        page = None
        if error is None:
            try:
                page = reads.job_page(filters, cursor, descending=not oldest_first)
            except ValueError:
                error = "after: not a cursor of this list"
        self.render(
            resp,
            "console/jobs.html",
            session,
            falcon.HTTP_400 if error else falcon.HTTP_200,
            filters=job_filters.to_json(filters),
            choices=CHOICES,
            text_filters=TEXT_FILTERS,
            error=error,
            page=page,
            query=query_of(filters),
            order="asc" if oldest_first else "desc",
        )


class JobPage(Page):
    def on_get(self, req, resp, job_id: UUID):
        session = self.session(req, resp)
        job = _job(job_id)
        self._show(resp, session, job, NOTICES.get(req.get_param("notice") or ""))

    def _show(self, resp, session, job, notice=None, status=falcon.HTTP_200, error=None):
        logs = list(job.delivery_logs.order_by(DeliveryLog.attempt, DeliveryLog.created_at))
        events = events_of(job.id)
        self.render(
            resp,
            "console/job.html",
            session,
            status,
            job=job,
            recipient=job.recipient if job.recipient_id else None,
            timeline=_timeline(job, logs, events),
            retryable=job.status == JobStatus.FAILED and job.scrubbed_at is None,
            cancellable=job.status in CLAIMABLE_STATUSES,
            page_notice=notice,
            error=error,
        )


def _job(job_id: UUID) -> NotificationJob:
    job = (
        NotificationJob.select(NotificationJob, Recipient)
        .join(Recipient, JOIN.LEFT_OUTER, on=(NotificationJob.recipient == Recipient.id))
        .where(NotificationJob.id == job_id)
        .first()
    )
    if job is None:
        raise falcon.HTTPNotFound(title="Not found", description=f"No job {job_id}")
    return job


def _timeline(job: NotificationJob, logs: list, events: list[dict]) -> list[dict]:
    """What happened to a job, in time order: created, handed over, each attempt and its
    delivery log, the provider's events, and how it ended."""
    steps = [
        {"at": job.created_at, "what": "created", "detail": f"request {job.request_id or '—'}"}
    ]
    if job.scheduled_for and job.scheduled_for > job.created_at:
        steps.append({"at": job.scheduled_for, "what": "scheduled for", "detail": ""})
    if job.queued_at:
        steps.append({"at": job.queued_at, "what": "queued", "detail": "handed to the broker"})
    for entry in logs:
        detail = f"attempt {entry.attempt} via {entry.provider}"
        if entry.duration_ms is not None:
            detail += f", {entry.duration_ms} ms"
        if entry.error:
            detail += f": {entry.error}"
        steps.append({"at": entry.created_at, "what": entry.status, "detail": detail})
    for event in events:
        reason = event["detail"].get("reason") or event["detail"].get("response") or ""
        steps.append({"at": event["occurred_at"], "what": f"provider: {event['event']}",
                      "detail": reason})  # fmt: skip
    if job.processed_at:
        steps.append({"at": job.processed_at, "what": job.status,
                      "detail": job.failure_reason or ""})  # fmt: skip
    return sorted(steps, key=lambda step: step["at"])


class JobActionForm(Page):
    """``POST /admin/jobs/{id}/retry`` and ``/cancel``: the API's own retry and cancel."""

    def __init__(self, console: Console, action: str):
        super().__init__(console)
        self._action = action

    def on_post(self, req, resp, job_id: UUID):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, _ = posted
        job = _job(job_id)
        now = self.console.clock()
        try:
            if self._action == "retry":
                job_service.retry_job(job, self.console.outbox, now)
            else:
                job_service.cancel_job(job, now)
        except falcon.HTTPConflict as exc:
            return JobPage(self.console)._show(
                resp, session, _job(job_id), status=falcon.HTTP_409, error=exc.description
            )
        log.info(
            "console: %s %s job %s",
            session.operator,
            "retried" if self._action == "retry" else "cancelled",
            job_id,
            extra={"operator": session.operator, "action": self._action, "jobs": 1},
        )
        notice = "retried" if self._action == "retry" else "cancelled"
        raise falcon.HTTPSeeOther(f"/admin/jobs/{job_id}?notice={notice}")
