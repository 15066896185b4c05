"""Accepting ad-hoc emails: validated requests become committed jobs, then broker messages."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import dramatiq

from tribe_api.auth import Principal
from tribe_api.schemas import SendEmail
from tribe_shared.broker import accept_jobs, batch_key
from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus, NotificationType
from tribe_shared.models import NotificationJob


class EmailIntake:
    """Stores emails as jobs, all or none, and hands them to the broker.

    An email is its sender's job; one sent with the service role's key (which acts for no user)
    belongs to no user, and only the service role sees it.
    """

    def __init__(self, broker: dramatiq.Broker | None, clock: Callable[[], datetime]):
        self._broker = broker
        self._clock = clock

    def accept(self, principal: Principal, emails: Sequence[SendEmail]) -> list[NotificationJob]:
        """Create one job per email, all or none; return them with their status after hand-over."""
        now = self._clock()
        jobs = [self._job(principal, email, now, len(emails) > 1) for email in emails]
        accept_jobs(self._broker, jobs, clock=self._clock)
        return jobs

    @staticmethod
    def _job(principal: Principal, email: SendEmail, now: datetime, bulk: bool) -> NotificationJob:
        content = {"type": email.type, "subject": email.subject, "templateData": email.templateData}
        scheduled_for = max(email.scheduled_for or now, now)
        return NotificationJob(
            id=uuid.uuid4(),
            kind=JobKind.EMAIL,
            status=JobStatus.PENDING,
            owner=principal.user_id,
            created_by=principal.user_id,
            to_email=str(email.to),
            notification_type=NotificationType.IMMEDIATE,
            urgency=email.priority,
            delivery_method=DeliveryMethod.EMAIL,
            content=content,
            batch_key=batch_key(content, scheduled_for, email.priority) if bulk else None,
            scheduled_for=scheduled_for,
            created_at=now,
        )
