"""A local fake of SendGrid's v3 mail-send API, so the real ``sendgrid`` client runs in tests.

It records every request and answers from a script of replies, then with its ``default`` reply
(202 with an ``X-Message-Id`` unless a test sets another, e.g. ``fake.default = Reply(500)`` for an
outage): errors, 429 with ``X-RateLimit-Reset``, slow answers, a request held without an answer
(a hang), a connection closed after the answer or dropped before it. A test may also look at each
request as it arrives (``fake.intercept``) and pick its reply, or act, e.g. kill the worker that
sent it. Like SendGrid it speaks HTTP/1.1 and keeps connections alive; each request
notes which connection it came on. Start it with ``FakeSendGrid().start()`` and point
``SENDGRID_API_HOST`` at its ``url``; given a server ``tls`` context it speaks HTTPS, as SendGrid
does, and its ``url`` is an ``https://`` one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "SG.test-key"


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    delay: float = 0.0
    #: Close the connection after answering, without saying so (as a server dropping idle
    #: keep-alive connections does).
    close: bool = False
    #: Drop the connection instead of answering (a reset in the middle of a request).
    drop: bool = False
    #: Never answer: hold the request until :meth:`FakeSendGrid.release` or the fake stops,
    #: then drop the connection (a provider that hangs).
    hang: bool = False


@dataclass
class Received:
    headers: dict[str, str]
    body: dict
    message_id: str | None
    #: When the request reached the fake (``time.time()``), before any scripted delay.
    received_at: float = field(default_factory=time.time)
    #: The HTTP status the fake answered with.
    status: int | None = None
    #: The client's (host, port): requests on one kept-alive connection share it.
    connection: tuple[str, int] | None = None

    @property
    def job_ids(self) -> list[str]:
        return [p["custom_args"]["job_id"] for p in self.body.get("personalizations", [])]

    @property
    def recipients(self) -> list[str]:
        return [to["email"] for p in self.body["personalizations"] for to in p["to"]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that vanished (a killed worker, a timeout) is no error of the fake's."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeSendGrid:
    def __init__(self, api_key: str = API_KEY, *, tls: ssl.SSLContext | None = None):
        self.api_key = api_key
        self._tls = tls
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        #: The reply once the script is used up; a test may swap it at any time.
        self.default = Reply()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        #: Connections the fake closed or dropped (by a scripted ``close`` or ``drop``).
        self.closed_connections = 0
        #: Called with each request as it arrives (before any delay); a Reply it returns
        #: replaces the scripted one. It runs on the request's own server thread.
        self.intercept: Callable[[Received], Reply | None] | None = None
        self._released = threading.Event()
        self._stopping = False
        #: Requests being handled right now (received, not yet answered or dropped).
        self.in_flight = 0

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self) -> FakeSendGrid:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            #: An idle kept-alive connection is closed after this many seconds.
            timeout = 10

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                if fake._tls is not None:
                    self.connection.do_handshake()  # here, on the connection's own thread

            def do_POST(self):
                with fake._changed:
                    fake.in_flight += 1
                try:
                    fake._handle(self)
                finally:
                    with fake._changed:
                        fake.in_flight -= 1

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def release(self) -> None:
        """Let every request held so far by a ``hang`` reply go (its connection is dropped)."""
        released, self._released = self._released, threading.Event()
        released.set()

    def stop(self) -> None:
        self._stopping = True
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; then the default again."""
        with self._changed:
            self._script.extend(replies)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
                self._changed.wait(left)
            return list(self.requests)

    @property
    def job_ids(self) -> list[str]:
        return [job_id for r in self.requests if r.message_id for job_id in r.job_ids]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        received_at = time.time()
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        with self._changed:
            reply = self._script.popleft() if self._script else self.default
        if request.path != "/v3/mail/send":
            reply = Reply(404, body={"errors": [{"message": "not found"}]})
        elif request.headers.get("Authorization") != f"Bearer {self.api_key}":
            reply = Reply(
                401, body={"errors": [{"message": "The provided authorization grant is invalid"}]}
            )
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"unparseable": raw.decode(errors="replace")}
        received = Received(
            dict(request.headers), body, None, received_at, None, request.client_address[:2]
        )
        if self.intercept is not None:
            reply = self.intercept(received) or reply
        if reply.hang:
            with self._changed:
                self.requests.append(received)
                self._changed.notify_all()
            released = self._released
            if not self._stopping:
                released.wait()
            self._close(request)
            return
        if reply.delay:
            time.sleep(reply.delay)
        received.message_id = uuid.uuid4().hex if reply.status == 202 and not reply.drop else None
        received.status = None if reply.drop else reply.status
        message_id = received.message_id
        # Recorded before answering: whoever saw this answer finds it in ``requests``.
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        if reply.drop:
            self._close(request)
            return
        try:
            request.send_response(reply.status)
            for name, value in reply.headers.items():
                request.send_header(name, value)
            if message_id:
                request.send_header("X-Message-Id", message_id)
            payload = json.dumps(reply.body).encode() if reply.body is not None else b""
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            request.wfile.flush()
        except OSError:
            received.message_id = None  # the client gave up (timeout): it never saw a 202
            request.close_connection = True
            return
        if reply.close:
            self._close(request)

    def _close(self, request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            request.connection.shutdown(socket.SHUT_RDWR)
        with self._changed:
            self.closed_connections += 1
            self._changed.notify_all()

    def wait_for_closed_connections(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.closed_connections < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} closed connections")
                self._changed.wait(left)
