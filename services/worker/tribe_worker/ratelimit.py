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

import redis

# KEYS[1] log of call times (ms). ARGV: limit, window_ms, member.
# Returns 0 when a slot was taken, else the milliseconds until one frees up.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


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

    def try_acquire(self) -> int:
        """Take a slot if one is free (0), else return the milliseconds until one is."""
        if self._script is not None:
            return int(
                self._script(
                    keys=[self._key], args=[self._limit, self._window_ms, uuid.uuid4().hex]
                )
            )
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
        waited = 0
        while True:
            wait_ms = self.try_acquire()
            if wait_ms == 0:
                return 0
            if waited + wait_ms > max_wait_ms:
                return wait_ms
            self._sleep(wait_ms / 1000)
            waited += wait_ms
