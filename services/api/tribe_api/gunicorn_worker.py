"""gunicorn's gthread worker, answering in JSON the requests gunicorn refuses itself.

gunicorn refuses a request it cannot parse (a bad request line, a header line or a request line
too long, too many headers, a malformed chunk) before the application sees it, with an HTML page.
Every other error of the API is JSON with ``title`` and ``description``; so are these, from this
worker (``worker_class`` in ``gunicorn.conf.py``). gunicorn still chooses the status and writes
its log lines: the worker lets it write its page into a buffer, keeps the status line and sends
JSON instead.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from tribe_api.errors import CODES_BY_STATUS, Code

#: Title and description by status; any other status gets its standard reason phrase.
ERRORS = {
    400: ("Bad request", "The request is not valid HTTP"),
    403: ("Forbidden", "The request is not allowed"),
    414: ("URI too long", "The request line is too long"),
    417: ("Expectation failed", "Only 100-continue is supported"),
    431: ("Request header fields too large", "Too many request headers, or one too long"),
    500: ("Internal server error", "Something went wrong on our side"),
    501: ("Not implemented", "This transfer coding is not supported"),
}


class JsonErrorsWorker(ThreadWorker):
    """:class:`~gunicorn.workers.gthread.ThreadWorker` whose own error pages are JSON."""

    def handle_error(self, req, client, addr, exc):
        page = _Page()
        super().handle_error(req, page, addr, exc)
        if page.status is None:
            return  # gunicorn wrote nothing (it could not): neither do we
        try:
            util.write_nonblock(client, json_error_response(page.status))
        except Exception:
            self.log.debug("Failed to send error message.")


def json_error_response(status: int) -> bytes:
    """A whole HTTP/1.1 response (``Connection: close``) with a JSON error body."""
    phrase = _phrase(status)
    title, description = ERRORS.get(status, (phrase, phrase))
    code = CODES_BY_STATUS.get(status, Code.INTERNAL_ERROR if status >= 500 else Code.BAD_REQUEST)
    error = {"title": title, "description": description, "code": code}
    body = json.dumps(error, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class _Page:
    """Stands in for the client socket while gunicorn writes its HTML page; keeps its status."""

    def __init__(self):
        self.status: int | None = None

    def gettimeout(self) -> float:
        return 0.0  # non-blocking already: gunicorn writes without toggling it

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0]
        self.status = int(status_line.split(b" ", 2)[1])
