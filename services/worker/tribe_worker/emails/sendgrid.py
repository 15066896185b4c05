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

Behind a proxy it does what the official client (urllib) would do with the same environment:
``HTTPS_PROXY`` for an https host, ``HTTP_PROXY`` for an http one, either lower- or upper-case,
unless ``NO_PROXY`` lists the host (:mod:`tribe_worker.emails.proxies`). The variables are read
once, when the provider is built (a worker restarts on a configuration change), and one log line
says which proxy is used. An https host is reached through an HTTP ``CONNECT`` tunnel, opened
once per kept-alive connection, so a tunnel serves every request of its thread as the direct
connection did, and TLS runs end to end with SendGrid inside it. An http host (tests) gets what
urllib sends it: plain requests to the proxy naming the whole URL, on a kept-alive connection to
the proxy. Credentials in the proxy URL (``http://user:password@proxy:3128``) go to the proxy
only, as ``Proxy-Authorization: Basic``: on the ``CONNECT`` for a tunnel, never inside it.

Failures through a proxy: a proxy that cannot be reached, or that cannot reach SendGrid, is
transient like SendGrid being unreachable. A proxy refusing our credentials (407) is no fault of
the email's and no passing trouble: like SendGrid refusing the API key it is ``refused``, so
sending pauses for every worker (the circuit opens, jobs wait without spending retries, the
refused-credentials alert fires) until the proxy settings are fixed and the workers restarted.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from sendgrid import SendGridAPIClient

from tribe_shared.contract import MAX_PERSONALIZATIONS
from tribe_worker.emails.providers import Addressee, DeliveryError, RenderedEmail, Sender
from tribe_worker.emails.proxies import Proxy, proxy_for

#: Seconds before a SendGrid connection attempt or read is abandoned.
DEFAULT_TIMEOUT = 10.0

#: HTTP statuses worth retrying; every other error status fails the job at once.
TRANSIENT_STATUSES = {408, 429} | set(range(500, 600))
#: SendGrid refused the API key: sending pauses for everyone (see ``DeliveryError.refused``).
REFUSED_STATUSES = {401, 403}

#: The v3 mail-send endpoint, under the configured host.
MAIL_SEND_PATH = "/v3/mail/send"

#: A proxy's answer when it wants (other) credentials.
PROXY_AUTHENTICATION_REQUIRED = 407
#: How ``http.client`` reports a proxy's refusal to open a tunnel (the status is not kept).
TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})")


class SendGridProvider:
    """Sends through SendGrid's v3 mail-send API at ``host``, directly or through a proxy.

    ``environ`` holds the proxy variables (default: the process environment), read here once;
    ``tls`` is the context that checks SendGrid's certificate (default: the system's CAs);
    ``clock`` (epoch seconds) says how long until a 429's ``X-RateLimit-Reset``.
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        host: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ):
        url = urlsplit(host)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"SendGrid host must be an http(s) URL, not {host!r}")
        # The official client's own headers: the bearer key, its User-Agent, Accept.
        official = SendGridAPIClient(api_key=api_key, host=host)
        self._headers = {**official.client.request_headers, "Content-Type": "application/json"}
        self._path = url.path.rstrip("/") + MAIL_SEND_PATH
        self._address = (url.hostname, url.port)
        self._tls = (tls or ssl.create_default_context()) if url.scheme == "https" else None
        self._proxy = proxy_for(host, os.environ if environ is None else environ)
        if self._proxy is not None and self._tls is None:
            # Plain HTTP through a proxy: the request names the whole URL, and carries the
            # proxy's credentials itself (there is no tunnel to put them on).
            self._path = f"http://{url.netloc}{self._path}"
            self._headers.update(self._proxy.headers)
        self._timeout = timeout
        self._clock = clock
        self._local = threading.local()

    def send(self, email: RenderedEmail, sender: Sender, to: list[Addressee]) -> str:
        if not 1 <= len(to) <= MAX_PERSONALIZATIONS:
            raise ValueError(f"one request takes 1 to {MAX_PERSONALIZATIONS} addressees")
        body = {
            "personalizations": [_personalization(a) for a in to],
            "from": {"email": sender.email, **({"name": sender.name} if sender.name else {})},
            "subject": email.subject,
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
        }
        try:
            status, headers, payload = self._post(json.dumps(body).encode())
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            raise self._unreachable(exc) from exc
        if 200 <= status < 300:
            return headers.get("X-Message-Id") or ""
        if status == PROXY_AUTHENTICATION_REQUIRED and self._proxy is not None:
            raise _proxy_refused(self._proxy)
        raise _from_error_status(status, headers, payload, now=self._clock())

    def _unreachable(self, exc: Exception) -> DeliveryError:
        """The failure for a request that got no answer from SendGrid."""
        if self._proxy is None:
            return DeliveryError(f"SendGrid unreachable: {exc!r}", transient=True)
        refusal = TUNNEL_FAILED.match(str(exc))
        if refusal and int(refusal.group(1)) == PROXY_AUTHENTICATION_REQUIRED:
            return _proxy_refused(self._proxy)
        return DeliveryError(
            f"SendGrid unreachable through the proxy {self._proxy}: {exc!r}", transient=True
        )

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
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> http.client.HTTPConnection:
        """A new connection to SendGrid: direct, through a proxy's tunnel, or to the proxy.

        ``http.client`` connects (and opens the tunnel) on the first request.
        """
        host, port = self._address
        proxy = self._proxy
        if proxy is None:
            if self._tls is None:
                return http.client.HTTPConnection(host, port, timeout=self._timeout)
            return http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._tls)
        if self._tls is None:
            return http.client.HTTPConnection(proxy.host, proxy.port, timeout=self._timeout)
        connection = http.client.HTTPSConnection(
            proxy.host, proxy.port, timeout=self._timeout, context=self._tls
        )
        connection.set_tunnel(host, port, headers=proxy.headers)
        return connection

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None


def _personalization(addressee: Addressee) -> dict:
    """One addressee's part of a request: our job id in ``custom_args`` (SendGrid copies it
    into every event) and the headers of their copy alone (SendGrid's DKIM signature covers
    them: RFC 8058 wants ``List-Unsubscribe`` signed)."""
    part = {"to": [{"email": addressee.email}], "custom_args": {"job_id": str(addressee.job_id)}}
    if addressee.headers:
        part["headers"] = dict(addressee.headers)
    return part


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


def _proxy_refused(proxy: Proxy) -> DeliveryError:
    return DeliveryError(
        f"the proxy {proxy} refused our credentials ({PROXY_AUTHENTICATION_REQUIRED} Proxy "
        f"Authentication Required): check the user and password in {proxy.variable}",
        transient=False,
        refused=True,
    )


def _from_error_status(status: int, headers, payload: bytes, *, now: float) -> DeliveryError:
    reason = f"SendGrid answered {status}: {payload.decode(errors='replace')[:500]}"
    retry_after = None
    if status == 429:
        reset = headers.get("X-RateLimit-Reset")
        try:
            retry_after = max(0.0, float(reset) - now) if reset else None
        except ValueError:
            retry_after = None
    return DeliveryError(
        reason,
        transient=status in TRANSIENT_STATUSES,
        retry_after=retry_after,
        refused=status in REFUSED_STATUSES,
    )
