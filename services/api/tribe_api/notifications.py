"""Accepting notification jobs (``POST /api/notifications``): check ownership, store, hand over."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import dramatiq
import falcon

from tribe_api.auth import Principal
from tribe_api.errors import ValidationFailed
from tribe_api.schemas import EnqueueNotification
from tribe_shared.broker import accept_jobs
from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus
from tribe_shared.models import Group, GroupMembership, NotificationJob, Recipient, Update


def owned(model, object_id: uuid.UUID, principal: Principal, field: str):
    """The caller's object (any for the service role); anything else is a 404 naming ``field``."""
    obj = model.get_or_none(model.id == object_id)
    if obj is None or not (principal.is_service or obj.owner_id == principal.user_id):
        raise falcon.HTTPNotFound(title="Not found", description=f"No {field} {object_id}")
    return obj


def _unprocessable(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([{"field": field, "message": message}], status=falcon.HTTP_422)


class NotificationIntake:
    def __init__(self, broker: dramatiq.Broker | None, clock: Callable[[], datetime]):
        self._broker = broker
        self._clock = clock

    def accept(self, principal: Principal, request: EnqueueNotification) -> NotificationJob:
        """Store the job and hand it to the broker."""
        recipient = owned(Recipient, request.recipient_id, principal, "recipient_id")
        group = owned(Group, request.group_id, principal, "group_id")
        if (
            not GroupMembership.select()
            .where(GroupMembership.group == group.id, GroupMembership.recipient == recipient.id)
            .exists()
        ):
            raise _unprocessable("recipient_id", "The recipient is not a member of the group")
        if request.update_id is not None:
            update = owned(Update, request.update_id, principal, "update_id")
            if update.group_id != group.id:
                raise _unprocessable("update_id", "The update was not posted to this group")
        if request.delivery_method == DeliveryMethod.EMAIL and not recipient.email:
            raise _unprocessable("delivery_method", "The recipient has no email address")
        if request.delivery_method != DeliveryMethod.EMAIL and not recipient.phone:
            raise _unprocessable("delivery_method", "The recipient has no phone number")

        now = self._clock()
        if request.scheduled_for is not None:
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
            content=request.content,
            scheduled_for=scheduled_for,
            created_at=now,
        )
        accept_jobs(self._broker, [job], clock=self._clock)
        return job
