"""Job rows written straight into the database, for tests that start below the API."""

from __future__ import annotations

import uuid
from datetime import datetime

from tribe_shared.contract import JobKind, JobStatus, Urgency
from tribe_shared.models import DeliveryLog, NotificationJob, utcnow
from tribe_shared.outbox import JobRef, Outbox, Staged

SYSTEM_EMAIL = {"type": "system", "subject": None, "templateData": {"title": "Hello from Tribe"}}


def email_job(
    *,
    status: JobStatus = JobStatus.QUEUED,
    to: str = "nana@example.com",
    content: dict | None = None,
    urgency: Urgency = Urgency.NORMAL,
    created_at: datetime | None = None,
    scheduled_for: datetime | None = None,
    batch_key: str | None = None,
) -> NotificationJob:
    """Store one ad-hoc email job (``queued`` by default, as if the API had handed it over)."""
    created_at = created_at or utcnow()
    return NotificationJob.create(
        id=uuid.uuid4(),
        kind=JobKind.EMAIL,
        status=status,
        to_email=to,
        content=content if content is not None else SYSTEM_EMAIL,
        urgency=urgency,
        created_at=created_at,
        scheduled_for=scheduled_for or created_at,
        batch_key=batch_key,
    )


def reload(job_or_id) -> NotificationJob:
    job_id = getattr(job_or_id, "id", job_or_id)
    return NotificationJob.get_by_id(uuid.UUID(str(job_id)))


def logs_of(job_or_id) -> list[DeliveryLog]:
    job_id = uuid.UUID(str(getattr(job_or_id, "id", job_or_id)))
    return list(DeliveryLog.select().where(DeliveryLog.job == job_id).order_by(DeliveryLog.attempt))


def send_queued(broker, jobs, now) -> set:
    """Send the messages of stored ``queued`` jobs as the outbox sends a request's jobs after
    its commit; return the ids whose messages went out (the others are back to ``pending``)."""
    refs = [JobRef.of(job) for job in jobs]
    Outbox(broker).send(Staged(refs, now))
    return {ref.id for ref in refs if ref.status == JobStatus.QUEUED}
