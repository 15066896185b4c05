"""Accepting notification jobs (``POST /api/notifications``): check ownership, store, hand over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import dramatiq

from tribe_api.auth import Principal
from tribe_api.family import notification_job, owned, unprocessable
from tribe_api.schemas import EnqueueNotification
from tribe_shared.broker import accept_jobs
from tribe_shared.contract import DeliveryMethod
from tribe_shared.models import Group, GroupMembership, NotificationJob, Recipient, Update


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
            raise unprocessable("recipient_id", "The recipient is not a member of the group")
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
            scheduled_for = max(request.scheduled_for, now)
        else:
            scheduled_for = now + timedelta(minutes=request.delay_minutes or 0)
        job = notification_job(
            principal,
            recipient,
            group.id,
            request.content,
            now,
            update_id=request.update_id,
            notification_type=request.notification_type,
            urgency=request.urgency,
            delivery_method=request.delivery_method,
            scheduled_for=scheduled_for,
        )
        accept_jobs(self._broker, [job], clock=self._clock)
        return job
