"""A dramatiq Worker started for the length of a ``with`` block (for tests that must set
something up before any message is processed, or need a given number of threads)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq


@contextmanager
def running_worker(broker: dramatiq.Broker, *, threads: int = 2) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
