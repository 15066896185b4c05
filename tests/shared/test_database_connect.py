"""Opening a PostgreSQL connection gives up after a while when the server does not answer.

A refused connection fails at once (``tests/worker/test_database_outage.py``); a host that takes
the connection and then says nothing (a hung server, a half-open network path) would make libpq
wait as long as the network lets it, holding an API request or a worker thread the whole time.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_until
from tribe_shared.db import CONNECT_TIMEOUT_SECONDS, is_unreachable, open_database


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose listener completes TCP handshakes (the kernel's backlog) and never speaks."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_connecting_to_a_server_that_never_answers_fails_as_unreachable(silent_server):
    # Given a database URL that names no connect_timeout
    database = open_database(f"postgresql://postgres@127.0.0.1:{silent_server}/tribe")
    outcome: list[BaseException] = []

    def connect():
        try:
            database.connect()
        except Exception as exc:
            outcome.append(exc)

    # When a connection is opened to a server that takes it and then says nothing
    threading.Thread(target=connect, daemon=True).start()

    # Then it fails after the default timeout, as an unreachable database
    (error,) = wait_until(
        lambda: outcome,
        timeout=CONNECT_TIMEOUT_SECONDS + 10,
        what="the connection attempt to give up",
    )
    assert is_unreachable(error), error


def test_the_database_url_sets_its_own_connect_timeout():
    url = "postgresql://postgres@127.0.0.1:5432/tribe"

    assert open_database(url).connect_params["connect_timeout"] == str(CONNECT_TIMEOUT_SECONDS)
    assert open_database(url + "?connect_timeout=1").connect_params["connect_timeout"] == "1"
