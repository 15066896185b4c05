"""Per-user limits: write requests a minute (past it, 429 with ``Retry-After``; other users go
on) and ad-hoc emails a day (:class:`EmailQuota`).

Every POST, PUT, PATCH and DELETE of an authenticated user counts against
``USER_WRITE_RATE_PER_MINUTE`` over a sliding minute (the current minute's count plus the part
of the previous minute's still in view), shared by every API process through Redis. Refused
requests do not count. The service role (the main app and admins, acting for everyone) is not
limited. Without Redis (development, one process) there is no limit.

Redis trouble never refuses a request: while Redis cannot be reached the limit is not counted
(for a few seconds at a time, then Redis is tried again), and the request goes on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import falcon
import redis

from tribe_api.errors import Code

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WINDOW_SECONDS = 60
#: After a Redis error, let writes through uncounted for this long before trying Redis again.
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


class _Counted:
    """A per-user limit counted by one Lua script on keys under ``namespace:PREFIX``."""

    SCRIPT: str
    PREFIX: str

    def __init__(
        self,
        limit: int,
        redis_client: redis.Redis,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self._limit = limit
        self._script = redis_client.register_script(self.SCRIPT)
        self._prefix = f"{namespace}:{self.PREFIX}"
        self._clock = clock


class WriteThrottle(_Counted):
    """Falcon middleware; runs after authentication (it needs ``req.context.principal``).
    Its limit is per minute."""

    SCRIPT = _COUNT_IF_ALLOWED
    PREFIX = "throttle"
    _redis_down_until = 0.0

    def process_resource(self, req, resp, resource, params):
        principal = getattr(req.context, "principal", None)
        if req.method not in WRITE_METHODS or principal is None or principal.is_service:
            return
        now = self._clock()
        if now < self._redis_down_until:
            return
        window, elapsed = divmod(now, WINDOW_SECONDS)
        weight = 1.0 - elapsed / WINDOW_SECONDS
        user = str(principal.user_id)
        keys = [f"{self._prefix}:{user}:{int(window)}", f"{self._prefix}:{user}:{int(window) - 1}"]
        try:
            allowed, current, previous = self._script(
                keys=keys, args=[weight, self._limit, 2 * WINDOW_SECONDS]
            )
        except redis.RedisError as exc:
            log.warning("write throttle off for %g s: Redis: %s", REDIS_BACKOFF_SECONDS, exc)
            self._redis_down_until = now + REDIS_BACKOFF_SECONDS
            return
        if not allowed:
            raise falcon.HTTPTooManyRequests(
                title="Too many requests",
                description=(f"At most {self._limit} changes a minute per user; try again later"),
                retry_after=self._retry_after(int(current), int(previous), elapsed),
            )

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


#: KEYS: the user's count of the day. ARGV: the emails to add, the day's limit, the key's life.
#: Returns {added (1/0), the day's count before}.
_ADD_IF_ROOM = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, current} end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, current}
"""
DAY_SECONDS = 24 * 60 * 60


class EmailQuota(_Counted):
    """At most ``limit`` ad-hoc emails a user may send per UTC day, counted across API
    processes in Redis; past it, 429 ``quota_exceeded`` until the next UTC midnight. The
    service role is not counted (see :mod:`tribe_api.intake`). Redis trouble never refuses:
    the emails go uncounted."""

    SCRIPT = _ADD_IF_ROOM
    PREFIX = "emails-per-day"

    def take(self, user: str, count: int) -> None:
        """Count ``count`` emails for ``user`` today, or refuse them all."""
        now = self._clock()
        day, elapsed = divmod(now, DAY_SECONDS)
        key = f"{self._prefix}:{user}:{int(day)}"
        try:
            added, before = self._script(keys=[key], args=[count, self._limit, 2 * DAY_SECONDS])
        except redis.RedisError as exc:
            log.warning("email quota not counted: Redis: %s", exc)
            return
        if not added:
            raise falcon.HTTPTooManyRequests(
                title="Daily email quota reached",
                description=(
                    f"A user may send {self._limit} emails a day; {int(before)} sent today, "
                    f"{count} more asked. The service role is not limited"
                ),
                retry_after=max(1, math.ceil(DAY_SECONDS - elapsed)),
                code=Code.QUOTA_EXCEEDED,
            )
