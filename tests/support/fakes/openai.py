"""A local fake of OpenAI's chat completions API (``POST /v1/chat/completions``), so the real
``openai`` client runs in tests.

It records every request (headers and JSON body) and answers with its ``default`` reply: a
completion whose text is ``SUMMARY`` and whose ``usage`` counts tokens, unless a test sets
another (``fake.default = Reply(500)`` for an error, ``Reply(hang=True)`` for a model that does
not answer within the client's timeout). Point ``OPENAI_BASE_URL`` at its ``url``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SUMMARY = "A big week: Maya took her first steps and loved the park."
API_KEY = "sk-test-key"


@dataclass
class Reply:
    status: int = 200
    content: str = SUMMARY
    prompt_tokens: int = 120
    completion_tokens: int = 24
    #: Hold the request, unanswered, until the fake stops or is released (a model that hangs).
    hang: bool = False


@dataclass
class Received:
    headers: dict[str, str]
    body: dict
    received_at: float = field(default_factory=time.time)

    @property
    def prompt(self) -> str:
        """Every message's text, as the model reads it."""
        return "\n".join(m["content"] for m in self.body.get("messages", []))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up (its timeout) is no error of the fake's."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    def __init__(self):
        self.requests: list[Received] = []
        self.default = Reply()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The base URL the client takes (``OPENAI_BASE_URL``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake._handle(self)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length) or b"{}")
        self.requests.append(Received(dict(handler.headers), body))
        reply = self.default
        if handler.path.rstrip("/") != "/v1/chat/completions":
            return self._answer(handler, 404, {"error": {"message": "not found"}})
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._answer(handler, 401, {"error": {"message": "Incorrect API key"}})
        if reply.hang:
            self._released.wait(30)
            handler.close_connection = True
            return None
        if reply.status != 200:
            error = {"error": {"message": "The server had an error", "type": "server_error"}}
            return self._answer(handler, reply.status, error)
        return self._answer(handler, 200, _completion(body, reply))

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _completion(body: dict, reply: Reply) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }
