"""Waiting on conditions with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import dramatiq
from dramatiq.brokers.stub import StubBroker

from tribe_shared.contract import Queue

T = TypeVar("T")

#: How long a test waits for anything before it gives up and fails.
DEFAULT_TIMEOUT = 15.0
#: Milliseconds ``StubBroker.join`` waits for a queue to drain.
JOIN_TIMEOUT_MS = int(DEFAULT_TIMEOUT * 1000)


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    what: str = "the condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; return that or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def settle(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """:func:`wait_until` that answers False at the deadline, so a test can report first."""
    try:
        return bool(wait_until(condition, timeout=timeout, interval=interval))
    except AssertionError:
        return False


def drain(broker: StubBroker, worker: dramatiq.Worker, queue: str = Queue.EMAILS) -> None:
    """Wait until every message of ``queue`` (retries and callbacks included) has been processed."""
    broker.join(str(queue), timeout=JOIN_TIMEOUT_MS)
    worker.join()
