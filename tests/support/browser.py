"""Helpers of the browser tests (``tests/browser/``): an app served over HTTP on a free local
port, waiting for what a click loads, and screenshots under ``var/test-output/screenshots/``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.processes import REPO

SCREENSHOTS = REPO / "var" / "test-output" / "screenshots"
#: How long a browser test waits for a page or a state before it fails.
WAIT_SECONDS = 20


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(app) -> Iterator[str]:
    """Serve a WSGI app on a free local port (HTTP, as a browser reaches it, a thread per
    request) for the length of a ``with`` block; gives its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def appears(browser, element_id: str, timeout: float = WAIT_SECONDS):
    """The element, once the page that holds it has loaded (a click's POST takes a moment)."""
    return WebDriverWait(browser, timeout).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )


def save_screenshot(browser, name: str) -> Path:
    """The page as the browser shows it, to ``var/test-output/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert browser.save_screenshot(str(path))
    return path
