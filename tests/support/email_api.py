"""Emails sent through the API (send-email, send-bulk-email), for the tests of those routes."""

from __future__ import annotations

from tribe_shared.models import NotificationJob

SEND = "/api/notifications/send-email"
BULK = "/api/notifications/send-bulk-email"
EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}


def email(**changes) -> dict:
    """:data:`EMAIL` with ``changes``."""
    return {**EMAIL, **changes}


def job_rows() -> list[NotificationJob]:
    return list(NotificationJob.select())
