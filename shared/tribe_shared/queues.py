"""How deep the broker's queues are, read straight from the Redis broker's keys in one round trip.

Waiting = ``LLEN <q>``; active (fetched, not yet acked) ≈ ``HLEN <q>.msgs - LLEN <q>``;
delayed = ``HLEN <q>.DQ.msgs``; failed (dead letters) = ``ZCARD <q>.XQ``.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from tribe_shared.contract import Queue

QUEUES = tuple(q.value for q in Queue)


def queue_depths(client: redis.Redis, namespace: str) -> dict[str, dict[str, int]]:
    """``{queue: {"waiting", "active", "delayed", "failed"}}`` for every queue of ours."""
    pipe = client.pipeline(transaction=False)
    depths_of = read_depths(pipe, namespace)
    return depths_of(pipe.execute())


def read_depths(
    pipe: redis.client.Pipeline, namespace: str
) -> Callable[[list], dict[str, dict[str, int]]]:
    """Add the depth reads to ``pipe`` (before any other command); returns the function that
    turns the pipeline's replies into ``{queue: {"waiting", "active", "delayed", "failed"}}``."""
    for queue in QUEUES:
        key = f"{namespace}:{queue}"
        pipe.llen(key)
        pipe.hlen(f"{key}.msgs")
        pipe.hlen(f"{key}.DQ.msgs")
        pipe.zcard(f"{key}.XQ")

    def depths_of(values: list) -> dict[str, dict[str, int]]:
        depths = {}
        for i, queue in enumerate(QUEUES):
            waiting, stored, delayed, failed = values[4 * i : 4 * i + 4]
            depths[queue] = {
                "waiting": waiting,
                "active": max(0, stored - waiting),
                "delayed": delayed,
                "failed": failed,
            }
        return depths

    return depths_of


#: How many replies :func:`read_depths` adds to a pipeline.
DEPTH_REPLIES = 4 * len(QUEUES)


def total(depths: dict[str, dict[str, int]]) -> dict[str, int]:
    """The depths summed over every queue."""
    keys = ("waiting", "active", "delayed", "failed")
    return {k: sum(d[k] for d in depths.values()) for k in keys}
