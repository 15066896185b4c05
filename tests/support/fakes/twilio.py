"""A local fake of Twilio's Messages API, so the real ``twilio`` client runs in tests.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP basic auth with the
account SID and auth token, answered as Twilio does: 201 and the message resource (``sid``
``SM…``, ``status: queued``, ``num_segments``), or an error status with Twilio's error body
(``code``, ``message``, ``more_info``, ``status``). Wrong credentials are a 401 with code 20003.
Replies are scripted (:meth:`FakeTwilio.script`), then the ``default`` one; a reply may be
delayed past the client's timeout. Start it with ``FakeTwilio().start()`` and point
``TWILIO_API_BASE_URL`` at its ``url``.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-token"
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "whatsapp:+14155238886"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@dataclass
class Reply:
    """201 and a message resource by default; else ``status`` with Twilio error ``code``."""

    status: int = 201
    code: int | None = None
    message: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: int, message: str = "", **kwargs) -> Reply:
    return Reply(status, code, message or f"Twilio error {code}", **kwargs)


@dataclass
class Received:
    path: str
    #: The form fields (one value each, as the client sends them).
    form: dict[str, str]
    authorized: bool
    status: int | None = None
    sid: str | None = None
    received_at: float = field(default_factory=time.time)


class FakeTwilio:
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[Received] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order; then the default again."""
        self._script.extend(replies)

    @property
    def sent(self) -> list[Received]:
        """The requests Twilio accepted (201)."""
        return [r for r in self.requests if r.status == 201]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
                self._changed.wait(left)
            return list(self.requests)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorized = handler.headers.get("Authorization") == f"Basic {expected}"
        received = Received(handler.path, form, authorized)
        reply = self._script.popleft() if self._script else self.default
        if handler.path != MESSAGES_PATH.replace(ACCOUNT_SID, self.account_sid):
            reply = error(404, 20404, "The requested resource was not found")
        elif not authorized:
            reply = error(401, 20003, "Authenticate")
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status == 201:
            received.sid = "SM" + secrets.token_hex(16)
            body = self._resource(received.sid, form)
        else:
            body = {
                "code": reply.code,
                "message": reply.message,
                "more_info": f"https://www.twilio.com/docs/errors/{reply.code}",
                "status": reply.status,
            }
        received.status = reply.status
        payload = json.dumps(body).encode()
        # Recorded before the answer: a client that has its answer finds its request here.
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout)

    def _resource(self, sid: str, form: dict[str, str]) -> dict:
        body = form.get("Body", "")
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        }
