"""A lean fake of Twilio's Messages API for benchmarks, on the asyncio server of
``bench/fake_sendgrid.py``.

``tests/support/fakes/twilio.py`` (a thread per connection, ``http.server``) is fine for tests but
costs too much CPU per request on two cores. This one answers the part of the real API the
worker's Twilio provider (the official ``twilio`` client) uses, over kept-alive HTTP/1.1:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json``, form-encoded, HTTP basic auth with the
  account SID and auth token -> ``201`` and a JSON message resource (``sid`` ``SM…``,
  ``status: queued``, ``num_segments``, ...); after ``delay_ms`` when set. Wrong credentials ->
  401 (code 20003), another path -> 404 (20404), no ``To`` or no ``Body``/``ContentSid`` -> 400
  (21602), each with Twilio's error body.
* It counts requests, accepted messages and the job ids of their ``StatusCallback``
  (``?job_id=…``; ``duplicates``: a job id seen in more than one accepted request).

Control, for the bench only (same port): ``GET /__bench/stats``, ``POST /__bench/config``
``{"delay_ms": 50}``, ``POST /__bench/reset``, as the fake SendGrid.

    python bench/fake_twilio.py [--port 0] [--delay-ms 0]   # credentials from the environment

It prints ``LISTENING <port>`` once it accepts connections and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import time
from urllib.parse import parse_qs

from fake_sendgrid import Counters, serve, watch_parent

ACCOUNT_SID_VARIABLE, AUTH_TOKEN_VARIABLE = "FAKE_TWILIO_ACCOUNT_SID", "FAKE_TWILIO_AUTH_TOKEN"
JSON = [(b"Content-Type", b"application/json")]


class FakeTwilio:
    """What :class:`fake_sendgrid.HttpProtocol` asks of a fake: ``handle`` and ``counters``."""

    def __init__(self, account_sid: str, auth_token: str, delay_ms: float = 0.0):
        self.account_sid = account_sid
        self.path = f"/2010-04-01/Accounts/{account_sid}/Messages.json".encode()
        basic = base64.b64encode(f"{account_sid}:{auth_token}".encode())
        self.auth = b"Basic " + basic
        self.delay_ms = delay_ms
        self.counters = Counters()

    def handle(self, method: bytes, path: bytes, headers: dict, body: bytes):
        """(status, extra headers, body bytes, delay seconds) for one request."""
        if path.startswith(b"/__bench/"):
            return self._control(method, path, body)
        now = time.time()
        c = self.counters
        c.requests += 1
        if c.first_at is None:
            c.first_at = now
        c.last_at = now
        if path != self.path or method != b"POST":
            return self._error(404, 20404, "The requested resource was not found")
        if headers.get(b"authorization") != self.auth:
            return self._error(401, 20003, "Authenticate")
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if not form.get("To") or not (form.get("Body") or form.get("ContentSid")):
            return self._error(400, 21602, "Message body is required")
        c.accepted += 1
        c.personalizations += 1
        c.max_personalizations = 1
        job_id = form.get("StatusCallback", "").rpartition("job_id=")[2] or None
        if job_id in c.job_ids:
            c.duplicates += 1
        else:
            c.job_ids.add(job_id)
        c.by_status[201] = c.by_status.get(201, 0) + 1
        sid = "SM" + secrets.token_hex(16)
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body", ""),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now)),
        }
        return 201, JSON, json.dumps(resource).encode(), self.delay_ms / 1000

    def _error(self, status: int, code: int, message: str):
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return status, JSON, json.dumps(body).encode(), 0.0

    def _control(self, method: bytes, path: bytes, body: bytes):
        if path == b"/__bench/stats":
            payload = {**self.counters.as_dict(), "delay_ms": self.delay_ms}
        elif path == b"/__bench/config" and method == b"POST":
            self.delay_ms = float(json.loads(body or b"{}").get("delay_ms", self.delay_ms))
            payload = {"delay_ms": self.delay_ms}
        elif path == b"/__bench/reset" and method == b"POST":
            self.counters.reset()
            payload = {"reset": True}
        else:
            return 404, [], b"", 0.0
        return 200, JSON, json.dumps(payload).encode(), 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="0 = a free port (printed)")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = p.parse_args(argv)
    fake = FakeTwilio(
        os.environ.get(ACCOUNT_SID_VARIABLE, "AC" + "0" * 32),
        os.environ.get(AUTH_TOKEN_VARIABLE, "bench-token"),
        args.delay_ms,
    )

    async def run():
        if args.parent_pid:
            asyncio.get_running_loop().create_task(watch_parent(args.parent_pid))
        await serve(fake, args.port)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
