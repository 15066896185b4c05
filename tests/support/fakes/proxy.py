"""A local HTTP forward proxy, so the SendGrid provider meets a proxy that speaks the real protocol.

It does what corporate forward proxies (squid and the like) do for urllib and curl:

- ``CONNECT host:port`` opens a tunnel: the proxy connects to the target, answers ``200`` and then
  relays bytes both ways until either side closes (the client runs TLS with the target inside);
- a request naming an absolute URL (``POST http://host:port/path``) is forwarded, without the
  hop-by-hop headers and the proxy's credentials, on a kept-alive connection the proxy holds to
  that host for this client connection, and the answer relayed back.

With ``credentials`` it answers ``407`` with ``Proxy-Authenticate`` to anything not carrying that
user and password as ``Proxy-Authorization: Basic``. A target it cannot reach gets ``502``. It
counts client connections, tunnels and forwarded requests, and keeps the headers each carried.
Start it with ``FakeProxy().start()`` and give the provider ``HTTPS_PROXY``/``HTTP_PROXY`` =
its ``url``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: Headers that concern one hop only: a proxy neither forwards nor relays them.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
#: Headers the proxy writes itself on each answer.
OWN_HEADERS = {"content-length", "date", "server"}
#: The user and password a guarded proxy of the tests wants (``FakeProxy(credentials=...)``).
USER, PASSWORD = "mailer", "s3cret-proxy-pass"


def basic(user: str, password: str) -> str:
    """``Proxy-Authorization`` carrying ``user`` and ``password`` as Basic credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class Tunnel:
    """A ``CONNECT`` the proxy accepted: its ``host:port`` and the headers it carried."""

    target: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Forwarded:
    """A request the proxy forwarded: the absolute URL it named and the headers it carried."""

    method: str
    url: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that vanished (a timeout, a test's end) is no error of the proxy's."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeProxy:
    def __init__(self, credentials: tuple[str, str] | None = None):
        self._expected = None if credentials is None else basic(*credentials)
        self.tunnels: list[Tunnel] = []
        self.forwarded: list[Forwarded] = []
        #: Client connections accepted.
        self.connections = 0
        #: Requests and ``CONNECT`` s answered ``407``.
        self.refused = 0
        #: Tunnels that ended (either side closed).
        self.closed_tunnels = 0
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> str:
        """``host:port`` the proxy listens on."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FakeProxy:
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_until(self, condition: Callable[[FakeProxy], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition(proxy)`` holds, checked whenever the proxy's counts change."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"proxy: {self.connections} connections, {len(self.tunnels)} tunnels, "
                        f"{len(self.forwarded)} forwarded, {self.refused} refused, "
                        f"{self.closed_tunnels} tunnels closed"
                    )
                self._changed.wait(left)

    def _note(self, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    def _count(self, counter: str) -> None:
        self._note(lambda: setattr(self, counter, getattr(self, counter) + 1))

    def _authorized(self, headers) -> bool:
        return self._expected is None or headers.get("Proxy-Authorization") == self._expected

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_ProxyHandler,), {"proxy": self})

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways between ``client`` and ``upstream`` until either closes."""
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for side in peers:
                selector.register(side, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.1):
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        with contextlib.suppress(OSError):
                            peers[key.fileobj].shutdown(socket.SHUT_RDWR)
                        return
                    try:
                        peers[key.fileobj].sendall(data)
                    except OSError:
                        return


class _ProxyHandler(BaseHTTPRequestHandler):
    """One client connection to a :class:`FakeProxy` (``proxy``, set by a subclass per proxy)."""

    proxy: FakeProxy
    protocol_version = "HTTP/1.1"
    #: An idle client connection is closed after this many seconds.
    timeout = 10

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.upstream: http.client.HTTPConnection | None = None
        self.proxy._count("connections")

    def finish(self):
        if self.upstream is not None:
            self.upstream.close()
        super().finish()

    def do_CONNECT(self):
        if not self.proxy._authorized(self.headers):
            self._refuse()
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except (OSError, ValueError):
            self._answer(502, close=True)
            return
        tunnel = Tunnel(self.path, dict(self.headers))
        self.proxy._note(lambda: self.proxy.tunnels.append(tunnel))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with upstream:
            self.proxy._relay(self.connection, upstream)
        self.proxy._count("closed_tunnels")

    def do_POST(self):
        self._forward()

    def do_GET(self):
        self._forward()

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.proxy._authorized(self.headers):
            self._refuse()
            return
        url = urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self._answer(400)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        forwarded = Forwarded(self.command, self.path, dict(self.headers))
        self.proxy._note(lambda: self.proxy.forwarded.append(forwarded))
        if self.upstream is None:
            self.upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            self.upstream.request(self.command, target, body, headers)
            response = self.upstream.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.upstream.close()
            self.upstream = None
            self._answer(502)
            return
        if response.will_close:
            self.upstream.close()
            self.upstream = None
        self._relay_answer(response, payload)

    def _relay_answer(self, response: http.client.HTTPResponse, payload: bytes) -> None:
        """Answer the client as the target answered, less the hop-by-hop headers."""
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP | OWN_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _refuse(self):
        self.proxy._count("refused")
        self._answer(407, {"Proxy-Authenticate": 'Basic realm="fake proxy"'})

    def _answer(self, status: int, headers: dict[str, str] | None = None, close=False):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
