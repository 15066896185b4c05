"""A per-user limit on write requests: past it, 429 with ``Retry-After``; other users go on.

Every POST, PUT, PATCH and DELETE of an authenticated user counts against
``USER_WRITE_RATE_PER_MINUTE`` over a sliding minute (the current minute's count plus the part
of the previous minute's still in view), shared by every API process through Redis, or kept
in the process without it. Refused requests do not count. The service role (the main app and
admins, acting for everyone) is not limited.

Redis trouble never refuses a request: the limit then falls back to this process's own count
for a few seconds, and the request goes on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import falcon
import redis

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WINDOW_SECONDS = 60
#: After a Redis error, count in the process for this long before trying Redis again.
REDIS_BACKOFF_SECONDS = 5.0

#: KEYS: this window's counter, the previous window's; ARGV: the previous window's weight, the
#: limit, the counter's time to live. Returns {counted (1/0), current count, previous count}.
_COUNT_IF_ALLOWED = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[1]) + current + 1 > tonumber(ARGV[2]) then
  return {0, current, previous}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, current + 1, previous}
"""


class WriteThrottle:
    """Falcon middleware; runs after authentication (it needs ``req.context.principal``)."""

    def __init__(
        self,
        limit_per_minute: int,
        redis_client: redis.Redis | None,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self._limit = limit_per_minute
        self._redis = redis_client
        self._script = redis_client.register_script(_COUNT_IF_ALLOWED) if redis_client else None
        self._prefix = f"{namespace}:throttle"
        self._clock = clock
        self._redis_down_until = 0.0
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def process_resource(self, req, resp, resource, params):
        principal = getattr(req.context, "principal", None)
        if req.method not in WRITE_METHODS or principal is None or principal.is_service:
            return
        now = self._clock()
        window, elapsed = divmod(now, WINDOW_SECONDS)
        weight = 1.0 - elapsed / WINDOW_SECONDS
        allowed, current, previous = self._count(str(principal.user_id), int(window), weight, now)
        if not allowed:
            raise falcon.HTTPTooManyRequests(
                title="Too many requests",
                description=(f"At most {self._limit} changes a minute per user; try again later"),
                retry_after=self._retry_after(current, previous, elapsed),
            )

    def _count(self, user: str, window: int, weight: float, now: float) -> tuple[bool, int, int]:
        if self._script is not None and now >= self._redis_down_until:
            keys = [f"{self._prefix}:{user}:{window}", f"{self._prefix}:{user}:{window - 1}"]
            try:
                allowed, current, previous = self._script(
                    keys=keys, args=[weight, self._limit, 2 * WINDOW_SECONDS]
                )
                return bool(allowed), int(current), int(previous)
            except redis.RedisError as exc:
                log.warning("write throttle counts in-process for a while: Redis: %s", exc)
                self._redis_down_until = now + REDIS_BACKOFF_SECONDS
        with self._lock:
            current = self._counts.get((user, window), 0)
            previous = self._counts.get((user, window - 1), 0)
            if previous * weight + current + 1 > self._limit:
                return False, current, previous
            self._counts[(user, window)] = current + 1
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= window - 1}
            return True, current + 1, previous

    def _retry_after(self, current: int, previous: int, elapsed: float) -> int:
        """Seconds until one more request fits: the previous minute's share fades as the
        window slides; past the minute's end, this minute's count becomes the fading one."""
        room = self._limit - 1 - current  # what the previous minute's share must shrink to
        if previous and room >= 0:
            # previous * (1 - (elapsed + t) / W) <= room
            wait = WINDOW_SECONDS * (1 - room / previous) - elapsed
            if wait <= WINDOW_SECONDS - elapsed:
                return max(1, math.ceil(wait))
        # Into the next minute: current * (1 - t' / W) + 1 <= limit
        fade = WINDOW_SECONDS * (1 - (self._limit - 1) / current) if current else 0.0
        return max(1, math.ceil(WINDOW_SECONDS - elapsed + max(0.0, fade)))
