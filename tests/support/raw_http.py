"""HTTP/1.1 on a bare socket, for requests no client library would send (malformed, too long)."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""

    def json_error(self, status: int) -> dict:
        """The answer is a JSON error of ``status`` with a ``title`` and a ``description``."""
        assert self.status == status, (self.status, self.headers, self.body[:300])
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        error = json.loads(self.body)
        assert isinstance(error.get("title"), str) and error["title"], error
        assert isinstance(error.get("description"), str) and error["description"], error
        return error


def exchange(port: int, request: bytes, *, timeout: float = 10.0) -> RawAnswer:
    """Send ``request`` to 127.0.0.1:``port`` and read one answer (until its body is whole or
    the server closes). A server that resets the connection after answering still counts."""
    received = b""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        while not _whole(received) and time.monotonic() < deadline:
            try:
                data = connection.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    return _parse(received)


def _whole(received: bytes) -> bool:
    _, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    length = _parse(received).headers.get("content-length")
    return length is not None and len(body) >= int(length)


def _parse(received: bytes) -> RawAnswer:
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1."), f"no HTTP answer: {received[:200]!r}"
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split(" ", 2)[1]), headers, body)
