"""Whether a fast-lane message (an urgent or high job) waits for a thread in this worker process.

Dramatiq's worker threads take prefetched messages from one priority queue, so an urgent message
goes first once a thread is free. But a thread holding a normal job at the rate limit is not
free: it waits there, in the thread. :class:`FastLaneWatch` lets such a thread see that an urgent
message of its own process is waiting for it, and give its thread up (its message deferred,
no retry spent) instead of waiting on.

It reads the worker's work queue through :mod:`tribe_shared.redis_broker`, the one module that
knows Dramatiq's insides.
"""

from __future__ import annotations

import dramatiq

from tribe_shared.contract import Queue
from tribe_shared.redis_broker import waits_for_a_thread, work_queue_of


class FastLaneWatch(dramatiq.Middleware):
    """Keeps the worker's work queue at boot; :meth:`waiting` looks into it."""

    def __init__(self):
        self._queue = None

    def before_worker_boot(self, broker, worker):
        self._queue = work_queue_of(worker)

    def waiting(self) -> bool:
        """A message of the fast lane waits for a worker thread of this process."""
        queue = self._queue
        if queue is None:
            return False
        return waits_for_a_thread(queue, Queue.URGENT)
