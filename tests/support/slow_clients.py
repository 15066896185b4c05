"""Slow clients: connections that start a request and then stop sending, on loopback only.

Half of them send half a header (no blank line ever comes), the other half a whole header
announcing a JSON body of which they send a few bytes. A server that reads a request on a thread
with no deadline keeps one thread per such connection for as long as the client likes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

HALF_HEADER = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = (
    b"POST /api/groups HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n" + b'{"name": "'
)


@contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections to 127.0.0.1:``port`` stalled mid-request, closed on exit."""
    held: list[socket.socket] = []
    try:
        for i in range(count):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            held.append(connection)
            connection.sendall(HALF_HEADER if i % 2 == 0 else SLOW_BODY)
        yield held
    finally:
        for connection in held:
            connection.close()


def still_open(connection: socket.socket) -> bool:
    """Whether the server has neither answered nor closed this connection yet."""
    connection.setblocking(False)
    try:
        connection.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True  # nothing to read and no end of stream: the server is still waiting for us
    except OSError:
        return False  # reset
    finally:
        connection.settimeout(5)
    return False  # an answer, or the end of the stream
