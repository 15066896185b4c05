"""A dramatiq Worker started for the length of a ``with`` block (for tests that must set
something up before any message is processed, or need a given number of threads)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq

from tribe_shared.contract import PERIODIC_ACTORS, scheduler_runs_key, worker_heartbeats_key


@contextmanager
def running_worker(broker: dramatiq.Broker, *, threads: int = 2) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=threads)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def heartbeat(
    client,
    namespace: str,
    member: str = "worker-host:1",
    *,
    age: float = 0.0,
    now: float | None = None,
) -> None:
    """Score a worker's heartbeat ``age`` seconds before ``now`` (the reader's clock; default the
    real one), as a worker process does (METRICS.md: ``{namespace}:worker-heartbeats``, member
    ``<hostname>:<pid>``, score the unix time)."""
    now = time.time() if now is None else now
    client.zadd(worker_heartbeats_key(namespace), {member: now - age})


def scheduler_ran(
    client, namespace: str, tasks=PERIODIC_ACTORS, *, age: float = 0.0, now: float | None = None
) -> None:
    """Record that each of ``tasks`` last ran ``age`` seconds before ``now`` (default the real
    clock), as a worker running a scheduler's tick does (``{namespace}:scheduler-last-run``,
    field the task, value the time)."""
    now = time.time() if now is None else now
    client.hset(scheduler_runs_key(namespace), mapping={str(t): now - age for t in tasks})
