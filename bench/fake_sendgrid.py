"""A lean fake of SendGrid's v3 mail-send API for benchmarks: a raw asyncio HTTP/1.1 server.

``tests/support/fakes/sendgrid.py`` (a thread per connection, ``http.server``) is fine for tests but
costs too much CPU per request to measure a worker at hundreds of emails a second on two cores.
This one speaks the same part of the real API (HTTP/1.1, kept-alive connections), so the
worker's real SendGrid provider talks to it unchanged:

* ``POST /v3/mail/send`` with ``Authorization: Bearer <key>`` and a JSON body -> ``202``, empty
  body, ``X-Message-Id: <hex>``; after ``delay_ms`` when set (an ``asyncio`` timer, so any number
  of requests wait at once). A wrong key -> 401, another path -> 404, a body that is not the
  JSON of a mail -> 400, each with SendGrid's ``{"errors": [...]}`` body.
* It counts requests, personalizations and the job ids in their ``custom_args``
  (``duplicates``: a job id seen in more than one accepted request).

Control, for the bench only (same port): ``GET /__bench/stats`` -> JSON counters,
``POST /__bench/config`` ``{"delay_ms": 50}``, ``POST /__bench/reset``.

Run in its own process (so its CPU time is its own and it never competes for the bench's GIL):

    python bench/fake_sendgrid.py --api-key KEY [--port 0] [--delay-ms 0]

It prints ``LISTENING <port>`` once it accepts connections and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
}


class Counters:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.accepted = 0
        self.personalizations = 0
        self.max_personalizations = 0
        self.by_status: dict[int, int] = {}
        self.job_ids: set[str] = set()
        self.duplicates = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.connections = 0

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "personalizations": self.personalizations,
            "max_personalizations": self.max_personalizations,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "unique_job_ids": len(self.job_ids),
            "duplicates": self.duplicates,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "connections": self.connections,
        }


class FakeSendGrid:
    def __init__(self, api_key: str, delay_ms: float = 0.0):
        self.auth = f"Bearer {api_key}".encode()
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
        if path != b"/v3/mail/send" or method != b"POST":
            return self._count(404, "not found")
        if headers.get(b"authorization") != self.auth:
            return self._count(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        try:
            mail = json.loads(body)
            personalizations = mail["personalizations"]
            job_ids = [p.get("custom_args", {}).get("job_id") for p in personalizations]
            if not 1 <= len(personalizations) <= 1000 or not mail.get("from"):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._count(400, "The mail body is not valid")
        c.accepted += 1
        c.personalizations += len(personalizations)
        c.max_personalizations = max(c.max_personalizations, len(personalizations))
        for job_id in job_ids:
            if job_id in c.job_ids:
                c.duplicates += 1
            else:
                c.job_ids.add(job_id)
        c.by_status[202] = c.by_status.get(202, 0) + 1
        headers = [(b"X-Message-Id", uuid.uuid4().hex.encode())]
        return 202, headers, b"", self.delay_ms / 1000

    def _count(self, status: int, message: str):
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1
        body = json.dumps({"errors": [{"message": message, "field": None}]}).encode()
        return status, [(b"Content-Type", b"application/json")], body, 0.0

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
        return 200, [(b"Content-Type", b"application/json")], json.dumps(payload).encode(), 0.0


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive (``Connection: close`` honoured) and Content-Length bodies."""

    def __init__(self, fake: FakeSendGrid):
        self.fake = fake
        self.buffer = bytearray()
        self.transport = None
        self.busy = False  # a response is pending (delayed): hold further requests

    def connection_made(self, transport):
        self.transport = transport
        self.fake.counters.connections += 1

    def data_received(self, data):
        self.buffer += data
        if not self.busy:
            self._next()

    def _next(self):
        while not self.busy and self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self.transport.close()
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            try:
                method, path, version = head[0].split(b" ", 2)
            except ValueError:
                self.transport.close()
                return
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0") or 0)
            if length > MAX_BODY_BYTES:
                self.transport.close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            keep_alive = (
                version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
            )
            status, extra, payload, delay = self.fake.handle(method, path, headers, body)
            response = self._response(status, extra, payload, keep_alive)
            if delay > 0:
                self.busy = True
                asyncio.get_running_loop().call_later(delay, self._send, response, keep_alive)
                return
            self._send(response, keep_alive)

    @staticmethod
    def _response(status, extra, payload, keep_alive) -> bytes:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}".encode()]
        lines += [name + b": " + value for name, value in extra]
        lines.append(b"Content-Length: " + str(len(payload)).encode())
        lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + payload

    def _send(self, response: bytes, keep_alive: bool):
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response)
        if not keep_alive:
            self.transport.close()
            return
        if self.busy:
            self.busy = False
            self._next()

    def connection_lost(self, exc):
        self.transport = None


async def serve(fake, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(fake), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="0 = a free port (printed)")
    p.add_argument("--api-key", default=os.environ.get("FAKE_SENDGRID_API_KEY", "SG.bench"))
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = p.parse_args(argv)
    fake = FakeSendGrid(args.api_key, args.delay_ms)

    async def run():
        if args.parent_pid:
            asyncio.get_running_loop().create_task(watch_parent(args.parent_pid))
        await serve(fake, args.port)

    asyncio.run(run())
    return 0


async def watch_parent(pid: int) -> None:
    """Never outlive the bench (e.g. if it was SIGKILLed)."""
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


if __name__ == "__main__":
    sys.exit(main())
