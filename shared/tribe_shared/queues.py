"""How deep the broker's queues are, read straight from the Redis broker's keys in one round trip.

Waiting = ``LLEN <q>``; active (fetched, not yet acked) ≈ ``HLEN <q>.msgs - LLEN <q>``;
delayed = ``HLEN <q>.DQ.msgs``; failed (dead letters) = ``ZCARD <q>.XQ``.
"""

from __future__ import annotations

import redis

from tribe_shared.contract import Queue

QUEUES = tuple(q.value for q in Queue)


def queue_depths(client: redis.Redis, namespace: str) -> dict[str, dict[str, int]]:
    """``{queue: {"waiting", "active", "delayed", "failed"}}`` for every queue of ours."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        key = f"{namespace}:{queue}"
        pipe.llen(key)
        pipe.hlen(f"{key}.msgs")
        pipe.hlen(f"{key}.DQ.msgs")
        pipe.zcard(f"{key}.XQ")
    values = pipe.execute()
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


def total(depths: dict[str, dict[str, int]]) -> dict[str, int]:
    """The depths summed over every queue."""
    keys = ("waiting", "active", "delayed", "failed")
    return {k: sum(d[k] for d in depths.values()) for k in keys}
