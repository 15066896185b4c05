"""The global send-rate limit: at most ``rate`` provider calls in any sliding window, across
every worker process (a Redis sorted set of call times, updated by one Lua script that reads
Redis's own clock, so processes on different hosts agree).

Waiting is done here, in the worker thread, and never counts as a retry; a caller that would
wait longer than it is willing to gets the wait back and defers its message instead.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
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
    """``client`` None keeps the window in this process (development)."""

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        key: str,
        rate_per_second: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._limit, self._window_ms = window_for(rate_per_second)
        self._key = key
        self._sleep = sleep
        if client is not None:
            self._script = client.register_script(_ACQUIRE)
        else:
            self._script = None
            self._lock = threading.Lock()
            self._calls: deque[float] = deque()

    @property
    def shared(self) -> bool:
        """Whether the window is in Redis (else in this process)."""
        return self._script is not None

    def acquire_call(self) -> tuple[str, list]:
        """The key and arguments of :data:`ACQUIRE_LUA`'s ``acquire`` for a call now."""
        return self._key, [self._limit, self._window_ms, uuid.uuid4().hex]

    def try_acquire(self) -> int:
        """Take a slot if one is free (0), else return the milliseconds until one is."""
        if self._script is not None:
            key, args = self.acquire_call()
            return int(self._script(keys=[key], args=args))
        with self._lock:
            now = time.monotonic() * 1000
            while self._calls and self._calls[0] <= now - self._window_ms:
                self._calls.popleft()
            if len(self._calls) < self._limit:
                self._calls.append(now)
                return 0
            return max(1, math.ceil(self._calls[0] + self._window_ms - now))

    def acquire(self, max_wait_ms: int) -> int:
        """Wait for a slot up to ``max_wait_ms``; return 0 once taken, else the wait still due."""
        wait_ms, _ = self.wait_for(lambda: (self.try_acquire(), None), max_wait_ms)
        return wait_ms

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
