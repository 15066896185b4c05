"""Emails in tests: one rendered email and its addressees to hand a provider, and the parts of
what the fake SendGrid received."""

from __future__ import annotations

import uuid

import pytest

from tests.support.waiting import drain
from tribe_worker.emails.providers import (
    Addressee,
    DeliveryError,
    EmailProvider,
    RenderedEmail,
    Sender,
)

EMAIL = RenderedEmail(subject="Lily's first steps", html="<p>She walked!</p>", text="She walked!")
SENDER = Sender("no-reply@tribe.local")


def addressees(count: int = 1) -> list[Addressee]:
    """``count`` addressees, each with a job id of its own."""
    return [Addressee(f"relative{i}@example.com", uuid.uuid4()) for i in range(count)]


def send_expecting_failure(provider: EmailProvider, count: int = 1) -> DeliveryError:
    """Send :data:`EMAIL` to ``count`` addressees; the :class:`DeliveryError` it must raise."""
    with pytest.raises(DeliveryError) as failure:
        provider.send(EMAIL, SENDER, addressees(count))
    return failure.value


def content_of(request, kind: str) -> str:
    (value,) = [c["value"] for c in request.body["content"] if c["type"] == kind]
    return value


def the_one_email(stub_broker, stub_worker, sendgrid) -> tuple[str, str, str]:
    """Deliver what is queued; the subject, HTML and text of the one email sent."""
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.wait_for_requests(1)
    parts = {part["type"]: part["value"] for part in request.body["content"]}
    return request.body["subject"], parts["text/html"], parts["text/plain"]
