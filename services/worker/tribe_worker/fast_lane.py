"""Whether a fast-lane message (an urgent or high job) waits for a thread in this worker process.

Dramatiq's worker threads take prefetched messages from one priority queue, so an urgent message
goes first once a thread is free. But a thread holding a normal job at the rate limit is not
free: it waits there, in the thread. :class:`FastLaneWatch` lets such a thread see that an urgent
message of its own process is waiting for it, and give its thread up (its message deferred,
no retry spent) instead of waiting on.

It reads the worker's work queue (``Worker.work_queue``, a ``PriorityQueue`` of items with a
``message``: Dramatiq 2.x), under the queue's own lock, without changing it.
"""

from __future__ import annotations

import dramatiq

from tribe_shared.contract import Queue


class FastLaneWatch(dramatiq.Middleware):
    """Keeps the worker's work queue at boot; :meth:`waiting` looks into it."""

    def __init__(self):
        self._queue = None

    def before_worker_boot(self, broker, worker):
        self._queue = getattr(worker, "work_queue", None)

    def waiting(self) -> bool:
        """A message of the fast lane waits for a worker thread of this process."""
        queue = self._queue
        if queue is None:
            return False
        with queue.mutex:
            return any(item.message.queue_name == Queue.URGENT for item in queue.queue)
