"""The global send-rate limit: at most ``rate`` provider calls in any sliding window, across
every worker process (a Redis sorted set of call times, updated by one Lua script that reads
Redis's own clock, so processes on different hosts agree).

Waiting is done here, in the worker thread, and never counts as a retry; a caller that would
wait longer than it is willing to gets the wait back and defers its message instead. Without
Redis (development, one process) there is no limit: see :class:`tribe_worker.gates.OpenGates`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")

#: Lua function ``acquire(key, limit, window_ms, member)`` on a log of call times (ms): 0 when a
#: slot was taken, else the milliseconds until one frees up. Run by :meth:`RateLimiter.try_acquire`
#: and, together with the circuit's, by the worker's gate script (:mod:`tribe_worker.gates`).
ACQUIRE_LUA = """
local function acquire(key, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    return 0
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
"""

# KEYS[1] log of call times (ms). ARGV: limit, window_ms, member.
_ACQUIRE = ACQUIRE_LUA + "return acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"


def window_for(rate_per_second: float) -> tuple[int, int]:
    """(limit, window_ms): a whole number of calls per window, at ``rate_per_second``."""
    limit = max(1, math.floor(rate_per_second))
    return limit, math.ceil(limit / rate_per_second * 1000)


class RateLimiter:
    """At most ``rate_per_second`` slots in any sliding window, counted in the Redis ``key``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        rate_per_second: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._limit, self._window_ms = window_for(rate_per_second)
        self.key = key
        self._sleep = sleep
        self._script = client.register_script(_ACQUIRE)

    def acquire_args(self) -> list:
        """The arguments of :data:`ACQUIRE_LUA`'s ``acquire`` for a call now (after the key)."""
        return [self._limit, self._window_ms, uuid.uuid4().hex]

    def try_acquire(self) -> int:
        """Take a slot if one is free (0), else return the milliseconds until one is."""
        return int(self._script(keys=[self.key], args=self.acquire_args()))

    def wait_for(self, attempt: Callable[[], tuple[int, T]], max_wait_ms: int) -> tuple[int, T]:
        """Repeat ``attempt`` (it returns the wait for a slot, 0 once one is taken, and a result)
        sleeping in between, as long as the total wait stays within ``max_wait_ms``.

        Returns (0, result) once a slot is taken, else (the wait still due, last result).
        """
        waited = 0
        while True:
            wait_ms, result = attempt()
            if wait_ms == 0 or waited + wait_ms > max_wait_ms:
                return wait_ms, result
            self._sleep(wait_ms / 1000)
            waited += wait_ms
