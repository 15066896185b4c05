"""docker-compose's mail sink (``deploy/mailsink/mailsink.py``), run as compose runs it: the
stand-in for SendGrid, and the default webhook of compose's Alertmanager."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from tests.support.deploy_files import REPO
from tests.support.fakes.redis_server import free_port
from tests.support.waiting import wait_until

MAIL_SINK = REPO / "deploy" / "mailsink" / "mailsink.py"


@pytest.fixture
def mail_sink(tmp_path) -> Iterator[str]:
    """The compose service's mail sink, run as compose runs it, on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MAIL_SINK), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(base, timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_until(answers, what="the mail sink")
    yield base
    process.terminate()
    process.wait(timeout=10)
