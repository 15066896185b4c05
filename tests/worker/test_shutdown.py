"""A SIGTERM that reaches a dramatiq worker process twice (sent to the whole process group, then
forwarded by the main process) is one graceful stop, not a kill."""

from __future__ import annotations

import signal

import pytest

from tests.support.clocks import ManualClock
from tribe_worker.shutdown import ECHO_SECONDS, ignore_echoed_sigterm


@pytest.fixture
def received():
    """A Python SIGTERM handler that records its calls, as dramatiq's worker process has."""
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_repeated_at_once_reaches_the_handler_once(received):
    clock = ManualClock()
    assert ignore_echoed_sigterm(clock)
    handler = signal.getsignal(signal.SIGTERM)

    handler(signal.SIGTERM, None)
    clock.now += 0.01
    handler(signal.SIGTERM, None)

    assert received == [signal.SIGTERM]


def test_a_sigterm_sent_again_later_still_reaches_the_handler(received):
    clock = ManualClock()
    ignore_echoed_sigterm(clock)
    handler = signal.getsignal(signal.SIGTERM)

    handler(signal.SIGTERM, None)
    clock.now += ECHO_SECONDS
    handler(signal.SIGTERM, None)

    assert received == [signal.SIGTERM, signal.SIGTERM]


def test_without_a_python_handler_nothing_changes():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        assert not ignore_echoed_sigterm()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
