"""Bodies over 1 MiB are refused with 413, also when they come chunked (no Content-Length);
a chunked body within the limit is read as any other; one the server cannot decode is a 400."""

from __future__ import annotations

import io
import json

from falcon import testing

from tribe_api.middleware import MAX_BODY_BYTES

GROUPS = "/api/groups"


class Endless(io.RawIOBase):
    """A request stream that never ends, counting what was read of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"a" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


class InvalidChunkSize(Exception):
    """What gunicorn raises from a body read when a chunk's size line is not hexadecimal."""


class MalformedChunks(io.RawIOBase):
    """A chunked request stream whose server finds the chunk coding broken."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise InvalidChunkSize("Invalid chunk size: 'zz'")


def call_chunked(api: testing.TestClient, headers: dict, stream) -> tuple[str, dict]:
    """POST to the app as a server passes a chunked body: a stream and no Content-Length."""
    environ = testing.create_environ(
        path=GROUPS,
        method="POST",
        headers={**headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = status

    body = b"".join(api.app(environ, start_response))
    return answer["status"], json.loads(body)


def test_a_chunked_body_over_the_limit_is_refused_after_reading_just_past_it(api, tokens):
    stream = Endless()
    status, body = call_chunked(api, tokens.alice, io.BufferedReader(stream))
    assert status.startswith("413")
    assert body["title"] == "Request body too large"
    assert stream.read_bytes <= MAX_BODY_BYTES + io.DEFAULT_BUFFER_SIZE


def test_a_chunked_body_within_the_limit_is_read(api, tokens):
    status, body = call_chunked(api, tokens.alice, io.BytesIO(b'{"name": "Chunked family"}'))
    assert status.startswith("201")
    assert body["name"] == "Chunked family"


def test_a_body_exactly_at_the_limit_is_not_refused_for_its_size(api, tokens):
    payload = b'{"name": "x"}'.ljust(MAX_BODY_BYTES, b" ")
    status, _ = call_chunked(api, tokens.alice, io.BytesIO(payload))
    assert status.startswith("201")


def test_a_chunked_body_the_server_cannot_decode_is_a_400_not_a_500(api, tokens):
    status, body = call_chunked(api, tokens.alice, io.BufferedReader(MalformedChunks()))

    assert status.startswith("400")
    assert body["title"] == "Malformed body"
    assert body["description"]
