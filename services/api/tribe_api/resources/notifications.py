"""``POST /api/notifications/send-email`` and ``/send-bulk-email``."""

from __future__ import annotations

import falcon
from spectree import Response

from tribe_api.intake import EmailIntake, NotificationIntake
from tribe_api.resources.jobs import accepted
from tribe_api.schemas.errors import Error
from tribe_api.schemas.jobs import (
    EnqueueNotification,
    JobAccepted,
    SendBulkEmail,
    SendBulkEmailAccepted,
    SendEmail,
    SendEmailAccepted,
)
from tribe_api.spec import errors, spec

ERRORS = errors(body=True, write=True)


class SendEmailResource:
    #: A POST with an ``Idempotency-Key`` is safe to retry (:mod:`tribe_api.idempotency`).
    idempotent = True

    def __init__(self, intake: EmailIntake):
        self._intake = intake

    @spec.validate(
        json=SendEmail,
        resp=Response(HTTP_202=SendEmailAccepted, HTTP_422=Error, **ERRORS),
        tags=["emails"],
    )
    def on_post(self, req, resp, json: SendEmail):
        """Queue one email; answers at once, before anything is sent.

        The service role may email anyone; a user only their own recipients (422 naming ``to``
        otherwise), at most ``USER_EMAILS_PER_DAY`` a day (429 ``quota_exceeded``).
        """
        (job,) = self._intake.accept(req.context.principal, [json], req.context.request_id)
        resp.status = falcon.HTTP_202
        resp.media = {
            "success": True,
            "messageId": job.id,
            "jobId": job.id,
            "status": job.status,
            "statusCode": 202,
            "message": "Email queued for delivery",
        }


class SendBulkEmailResource:
    #: A POST with an ``Idempotency-Key`` is safe to retry (:mod:`tribe_api.idempotency`).
    idempotent = True

    def __init__(self, intake: EmailIntake):
        self._intake = intake

    @spec.validate(
        json=SendBulkEmail,
        resp=Response(HTTP_202=SendBulkEmailAccepted, HTTP_422=Error, **ERRORS),
        tags=["emails"],
    )
    def on_post(self, req, resp, json: SendBulkEmail):
        """Queue 1 to 1000 emails, all or none; identical contents go out as one batch.

        As send-email: a user may email only their own recipients (422 naming each
        ``emails[i].to`` otherwise), and each email counts towards their daily quota.
        """
        jobs = self._intake.accept(req.context.principal, json.emails, req.context.request_id)
        resp.status = falcon.HTTP_202
        resp.media = {
            "success": True,
            "jobs": [{"jobId": job.id, "to": job.to_email, "status": job.status} for job in jobs],
            "statusCode": 202,
            "message": f"{len(jobs)} emails queued for delivery",
        }


class NotificationsResource:
    #: A POST with an ``Idempotency-Key`` is safe to retry (:mod:`tribe_api.idempotency`).
    idempotent = True

    def __init__(self, intake: NotificationIntake, clock):
        self._intake = intake
        self._clock = clock

    @spec.validate(
        json=EnqueueNotification,
        resp=Response(HTTP_202=JobAccepted, HTTP_404=Error, HTTP_422=Error, **ERRORS),
        tags=["notifications"],
    )
    def on_post(self, req, resp, json: EnqueueNotification):
        """Queue one notification to a recipient of a group; owner only (or the service role).

        422 if the recipient is not in the group, the update was not posted to it, or the
        recipient has no address for the delivery method (an email address, a phone number).
        """
        job = self._intake.accept(req.context.principal, json, req.context.request_id)
        resp.status = falcon.HTTP_202
        resp.media = accepted(job, "Notification queued for delivery", self._clock())
