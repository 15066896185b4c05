"""The SendGrid provider: the official client, pointed at ``SENDGRID_API_HOST``, with a timeout.

One request carries one personalization per addressee (at most 1000), each with our job id in
``custom_args`` so SendGrid's events can be matched back to jobs.
"""

from __future__ import annotations

import http.client
import time
import urllib.error

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from tribe_shared.contract import MAX_PERSONALIZATIONS
from tribe_worker.emails.providers import Addressee, DeliveryError, RenderedEmail

#: Seconds before a SendGrid call is abandoned (the client has no timeout of its own).
DEFAULT_TIMEOUT = 10.0

#: HTTP statuses worth retrying; every other error status fails the job at once.
TRANSIENT_STATUSES = {408, 429} | set(range(500, 600))


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, api_key: str, host: str, *, timeout: float = DEFAULT_TIMEOUT):
        self._client = SendGridAPIClient(api_key=api_key, host=host)
        self._client.client.timeout = timeout

    def send(self, email: RenderedEmail, sender: str, to: list[Addressee]) -> str:
        if not 1 <= len(to) <= MAX_PERSONALIZATIONS:
            raise ValueError(f"one request takes 1 to {MAX_PERSONALIZATIONS} addressees")
        body = {
            "personalizations": [
                {"to": [{"email": a.email}], "custom_args": {"job_id": str(a.job_id)}} for a in to
            ],
            "from": {"email": sender},
            "subject": email.subject,
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
        }
        try:
            response = self._client.client.mail.send.post(request_body=body)
        except http_errors.HTTPError as exc:
            raise _from_http_error(exc) from exc
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise DeliveryError(f"SendGrid unreachable: {exc}", transient=True) from exc
        return response.headers.get("X-Message-Id") or ""


def _from_http_error(exc: http_errors.HTTPError) -> DeliveryError:
    status = exc.status_code
    detail = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
    reason = f"SendGrid answered {status}: {str(detail)[:500]}"
    retry_after = None
    if status == 429:
        reset = (exc.headers or {}).get("X-RateLimit-Reset")
        try:
            retry_after = max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            retry_after = None
    return DeliveryError(reason, transient=status in TRANSIENT_STATUSES, retry_after=retry_after)
