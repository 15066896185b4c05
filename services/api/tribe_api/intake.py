"""Where a request becomes a job: ad-hoc emails (send-email, send-bulk-email) and notifications
(``POST /api/notifications``). An update's fan-out is :mod:`tribe_api.updates`.

Each request's jobs are written, all or none, as the outbox staged them (``queued`` when due
soon), and handed to the broker after the commit (:mod:`tribe_shared.outbox`).

Who may send ad-hoc email: the service role (the main app: welcome and system emails) to
anyone; a user only to their own recipients' addresses, at most ``USER_EMAILS_PER_DAY`` a day
(:class:`tribe_api.throttle.EmailQuota`). So no signed-in user can use Tribe's sender to reach
a stranger. A job may be scheduled at most :data:`MAX_SCHEDULE_AHEAD` ahead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import falcon
from peewee import fn

from tribe_api.access import owned
from tribe_api.auth import Principal
from tribe_api.errors import Kind, ValidationFailed, unprocessable
from tribe_api.family import require_member
from tribe_api.schemas.jobs import EnqueueNotification, SendEmail
from tribe_shared.contract import (
    DeliveryMethod,
    EmailContent,
    JobKind,
    JobStatus,
    NotificationType,
)
from tribe_shared.models import Group, NotificationJob, Recipient, Update
from tribe_shared.outbox import JobRef, Outbox, batch_key
from tribe_shared.sql.insert import insert_models

#: The furthest ahead a job may be scheduled: later, it would wait in the outbox for a year.
MAX_SCHEDULE_AHEAD = timedelta(days=366)


def accept(outbox: Outbox, jobs: list[NotificationJob], now: datetime) -> None:
    """Write new jobs as the outbox stages them and hand them over after the commit; each job
    ends with the status it has in the database (``pending`` if its message could not go)."""
    refs = [JobRef.of(job) for job in jobs]
    staged = outbox.stage(refs, now)
    for job, ref in zip(jobs, refs, strict=True):
        job.status, job.queued_at = ref.status, ref.queued_at
    insert_models(NotificationJob, jobs)
    outbox.send(staged)
    for job, ref in zip(jobs, refs, strict=True):
        job.status, job.queued_at = ref.status, ref.queued_at


class EmailIntake:
    """Stores emails as jobs, all or none, and hands them to the broker.

    An email is its sender's job; one sent with the service role's key (which acts for no user)
    belongs to no user, and only the service role sees it.
    """

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime], quota=None):
        self._outbox = outbox
        self._clock = clock
        self._quota = quota

    def accept(
        self, principal: Principal, emails: Sequence[SendEmail], request_id: str | None = None
    ) -> list[NotificationJob]:
        """One job per email, all or none; returned with their status after the hand-over.

        Emails of a bulk request with identical content share a batch key and travel together.
        """
        now = self._clock()
        prefix = "emails" if len(emails) > 1 else ""
        for index, email in enumerate(emails):
            if email.scheduled_for is not None:
                too_late(email.scheduled_for, now, _field(prefix, index, "scheduled_for"))
        if not principal.is_service:
            _to_own_recipients(principal, emails, prefix)
            if self._quota is not None:
                self._quota.take(str(principal.user_id), len(emails))
        bulk = len(emails) > 1
        jobs = [_email_job(principal, email, now, bulk, request_id) for email in emails]
        accept(self._outbox, jobs, now)
        return jobs


def too_late(scheduled_for: datetime, now: datetime, field: str) -> None:
    """A 422 for a time further ahead than :data:`MAX_SCHEDULE_AHEAD` (a bound that moves with
    the clock, which no document can state)."""
    if scheduled_for > now + MAX_SCHEDULE_AHEAD:
        days = MAX_SCHEDULE_AHEAD.days
        raise unprocessable(field, f"Must be at most {days} days ahead", Kind.RANGE)


def _field(prefix: str, index: int, name: str) -> str:
    return f"{prefix}[{index}].{name}" if prefix else name


def _to_own_recipients(principal: Principal, emails: Sequence[SendEmail], prefix: str) -> None:
    """A 422 naming each address that is none of the caller's recipients'."""
    wanted = {str(email.to).lower() for email in emails}
    known = {
        address.lower()
        for (address,) in Recipient.select(Recipient.email)
        .where(Recipient.owner == principal.user_id, fn.LOWER(Recipient.email).in_(list(wanted)))
        .tuples()
    }
    strangers = [
        {
            "field": _field(prefix, index, "to"),
            "kind": Kind.CONFLICT,
            "message": "A user may email only their own recipients (the service role anyone)",
        }
        for index, email in enumerate(emails)
        if str(email.to).lower() not in known
    ]
    if strangers:
        raise ValidationFailed(strangers, status=falcon.HTTP_422)


def _email_job(principal: Principal, email: SendEmail, now: datetime, bulk: bool, request_id):
    content = EmailContent(type=email.type, subject=email.subject, templateData=email.templateData)
    if email.locale is not None:
        content["locale"] = email.locale
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
        request_id=request_id,
    )


class NotificationIntake:
    """Accepts one notification to a recipient of a group (the original
    ``enqueue_notification_job``)."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]):
        self._outbox = outbox
        self._clock = clock

    def accept(
        self, principal: Principal, request: EnqueueNotification, request_id: str | None = None
    ) -> NotificationJob:
        """Check the references are the caller's and fit together, store the job, hand it over.

        422 if the recipient is not in the group, the update was not posted to it, or the
        recipient has no address for the delivery method.
        """
        recipient = owned(Recipient, request.recipient_id, principal, "recipient_id")
        group = owned(Group, request.group_id, principal, "group_id")
        require_member(recipient, group)
        if request.update_id is not None:
            update = owned(Update, request.update_id, principal, "update_id")
            if update.group_id != group.id:
                raise unprocessable("update_id", "The update was not posted to this group")
        if request.delivery_method == DeliveryMethod.EMAIL and not recipient.email:
            raise unprocessable("delivery_method", "The recipient has no email address")
        if request.delivery_method != DeliveryMethod.EMAIL and not recipient.phone:
            raise unprocessable("delivery_method", "The recipient has no phone number")
        now = self._clock()
        if request.scheduled_for is not None:
            too_late(request.scheduled_for, now, "scheduled_for")
            scheduled_for = max(request.scheduled_for, now)
        else:
            scheduled_for = now + timedelta(minutes=request.delay_minutes or 0)
        job = NotificationJob(
            id=uuid.uuid4(),
            kind=JobKind.NOTIFICATION,
            status=JobStatus.PENDING,
            owner=recipient.owner_id,
            created_by=principal.user_id,
            recipient=recipient.id,
            group=group.id,
            family_update=request.update_id,
            to_email=recipient.email,
            notification_type=request.notification_type,
            urgency=request.urgency,
            delivery_method=request.delivery_method,
            content=request.content.model_dump(mode="json", exclude_defaults=True),
            scheduled_for=scheduled_for,
            created_at=now,
            request_id=request_id,
        )
        accept(self._outbox, [job], now)
        return job
