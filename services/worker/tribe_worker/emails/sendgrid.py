"""The SendGrid provider: v3 mail-send over one kept-alive HTTP connection per worker thread.

One request carries one personalization per addressee (at most 1000), each with our job id in
``custom_args`` so SendGrid's events can be matched back to jobs.

The official client (``python_http_client``) builds a new opener and opens a new TCP (and TLS)
connection for every request; at hundreds of emails a second that was a large share of a
worker's CPU. So the requests go out on ``http.client`` connections kept per thread, with the
official client's own headers (bearer key, its User-Agent). A connection SendGrid closed while it
sat idle is noticed before it is used and replaced; one that breaks during a request is dropped,
and the failure is transient: the job is retried, and the next call connects afresh. A request
is never re-sent on its own: SendGrid has no idempotency key, so that could send an email twice.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
import time
from urllib.parse import urlsplit

from sendgrid import SendGridAPIClient

from tribe_shared.contract import MAX_PERSONALIZATIONS
from tribe_worker.emails.providers import Addressee, DeliveryError, RenderedEmail

#: Seconds before a SendGrid connection attempt or read is abandoned.
DEFAULT_TIMEOUT = 10.0

#: HTTP statuses worth retrying; every other error status fails the job at once.
TRANSIENT_STATUSES = {408, 429} | set(range(500, 600))
#: SendGrid refused the API key: sending pauses for everyone (see ``DeliveryError.refused``).
REFUSED_STATUSES = {401, 403}

#: The v3 mail-send endpoint, under the configured host.
MAIL_SEND_PATH = "/v3/mail/send"


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, api_key: str, host: str, *, timeout: float = DEFAULT_TIMEOUT):
        url = urlsplit(host)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"SendGrid host must be an http(s) URL, not {host!r}")
        # The official client's own headers: the bearer key, its User-Agent, Accept.
        official = SendGridAPIClient(api_key=api_key, host=host)
        self._headers = {**official.client.request_headers, "Content-Type": "application/json"}
        self._path = url.path.rstrip("/") + MAIL_SEND_PATH
        self._address = (url.hostname, url.port)
        self._tls = ssl.create_default_context() if url.scheme == "https" else None
        self._timeout = timeout
        self._local = threading.local()

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
            status, headers, payload = self._post(json.dumps(body).encode())
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            raise DeliveryError(f"SendGrid unreachable: {exc!r}", transient=True) from exc
        if 200 <= status < 300:
            return headers.get("X-Message-Id") or ""
        raise _from_error_status(status, headers, payload)

    def _post(self, body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        """POST ``body`` on this thread's connection; (status, headers, body) of the answer."""
        connection = self._connection()
        try:
            connection.request("POST", self._path, body, self._headers)
            response = connection.getresponse()
            payload = response.read()
        except BaseException:
            # Whatever was half sent or half read stays on that connection: never reuse it.
            self._discard(connection)
            raise
        if response.will_close:
            self._discard(connection)
        return response.status, response.headers, payload

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and _closed_by_peer(connection):
            self._discard(connection)
            connection = None
        if connection is None:
            host, port = self._address
            if self._tls is not None:
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self._timeout, context=self._tls
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
            self._local.connection = connection
        return connection

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle kept-alive connection was closed (or broken) by the other side.

    An idle connection has nothing to read: if it is readable, that is the end of the stream
    (or an error), and a request sent on it would fail.
    """
    sock = connection.sock
    if sock is None:
        return False  # not connected yet: http.client connects on the next request
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _from_error_status(status: int, headers, payload: bytes) -> DeliveryError:
    reason = f"SendGrid answered {status}: {payload.decode(errors='replace')[:500]}"
    retry_after = None
    if status == 429:
        reset = headers.get("X-RateLimit-Reset")
        try:
            retry_after = max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            retry_after = None
    return DeliveryError(
        reason,
        transient=status in TRANSIENT_STATUSES,
        retry_after=retry_after,
        refused=status in REFUSED_STATUSES,
    )
