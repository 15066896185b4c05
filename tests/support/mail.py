"""What the fake SendGrid received: the parts of an email."""

from __future__ import annotations

from tests.support.waiting import drain


def content_of(request, kind: str) -> str:
    (value,) = [c["value"] for c in request.body["content"] if c["type"] == kind]
    return value


def the_one_email(stub_broker, stub_worker, sendgrid) -> tuple[str, str, str]:
    """Deliver what is queued; the subject, HTML and text of the one email sent."""
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.wait_for_requests(1)
    parts = {part["type"]: part["value"] for part in request.body["content"]}
    return request.body["subject"], parts["text/html"], parts["text/plain"]
