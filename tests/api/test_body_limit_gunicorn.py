"""The body limit on the real gunicorn (the ``web`` fixture): a 10 MB body, chunked or not, is
refused with 413 while its client still holds most of it back, so the server never reads it."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import JWT_SECRET
from tribe_api.auth import mint_token
from tribe_api.middleware import MAX_BODY_BYTES

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

#: What the client says it sends.
TEN_MB = 10 * 1024 * 1024
PIECE = b"a" * 65536
#: How long the client waits for the answer before it concludes the server is waiting for the
#: rest of the body (it would wait forever: the client never sends it).
ANSWER_DEADLINE = 10.0


def _refusal_of_a_big_body(port: int, token: str, *, chunked: bool) -> int:
    """Begin to POST 10 MB to /api/groups on a raw socket (Content-Length or chunked) but send
    no more than just past the API's limit; return the status the server answers meanwhile."""
    head = [
        "POST /api/groups HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {TEN_MB}",
        "",
        "",
    ]

    def send_past_the_limit(sock) -> None:
        # With a Content-Length the head alone says too much; a chunked body shows it when
        # the server has read past the limit. Either way the rest is never sent.
        pieces = MAX_BODY_BYTES // len(PIECE) + 1 if chunked else 0
        try:
            for _ in range(pieces):
                sock.sendall(b"%x\r\n%s\r\n" % (len(PIECE), PIECE))
        except OSError:
            pass  # the server answered and closed without reading the rest: as it should

    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_DEADLINE) as sock:
        sock.sendall("\r\n".join(head).encode())
        sender = threading.Thread(target=send_past_the_limit, args=(sock,), daemon=True)
        sender.start()
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)  # socket.timeout here: the server waited for the body
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("chunked", [False, True], ids=["with Content-Length", "chunked"])
def test_a_10_mb_body_is_refused_with_413_by_the_real_server_before_it_is_sent(web, chunked):
    base, *_ = web
    port = int(base.rsplit(":", 1)[1])
    status = _refusal_of_a_big_body(port, mint_token(JWT_SECRET), chunked=chunked)
    assert status == 413
