"""The global send-rate limit: at most ``rate`` provider calls in any sliding window, across
every worker process (a Redis sorted set of call times, updated by one Lua script that reads
Redis's own clock, so processes on different hosts agree).

Urgent first: a caller of the fast lane (an urgent or high job) that finds no slot free
registers as waiting, in a second sorted set beside the log (member: its first job's id, score:
when its claim lapses, Redis time). While any such claim is live, normal callers take no slot:
they *yield*, and the next slot that frees up goes to a fast-lane caller. A claim lapses on its
own (:data:`CLAIM_GRACE_MS` after the wait it was made for), so a caller that died or went away
never holds the others back for longer. Normal callers also yield while the broker's list of
waiting fast-lane messages is not empty (a message no worker has fetched yet), for at most
:data:`QUEUED_PATIENCE_MS` from when they first saw it so (no worker may consume that queue).
The log of call times is untouched by all this: the limit stays exact in every window.

Waiting is done here, in the worker thread, and never counts as a retry; a caller that would
wait longer than it is willing to gets the wait back and defers its message instead. Without
Redis (development, one process) there is no limit: see :class:`tribe_worker.gates.OpenGates`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import redis

T = TypeVar("T")

#: How long a fast-lane caller's claim outlives the wait it was made for (ms): time for a
#: deferred message to come back through the delay queue and be fetched by a worker thread.
CLAIM_GRACE_MS = 3_000

#: How often a thread waiting for a slot asks whether it should give its thread up (ms).
GIVE_UP_CHECK_MS = 50
#: How long normal callers yield to fast-lane messages waiting on the broker (ms): a worker
#: fetches within its ``dramatiq_worker_timeout`` (100 ms as the Procfile runs it, 1 s default).
QUEUED_PATIENCE_MS = 1_000

#: Lua functions on a log of call times (ms) and the fast lane's claims (score: lapses at, ms).
#: ``acquire(key, claims, queued, limit, window, member, waiter, grace, patience)``: ``queued``
#: is the broker's list of waiting fast-lane messages; returns ``wait, yielded``:
#: 0 when a slot was taken, else the milliseconds to wait before trying again, and 1 if that is
#: because a fast-lane caller waits (this caller, with ``waiter`` empty, is a normal one).
#: ``claim(claims, waiter, ms)``: the fast-lane caller ``waiter`` will be back within ``ms``.
#: Run by :meth:`RateLimiter.turn` and, together with the circuit's, by the worker's gate script
#: (:mod:`tribe_worker.gates`).
ACQUIRE_LUA = """
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function claim(claims, waiter, ms)
  ms = math.ceil(ms)
  redis.call('ZADD', claims, redis_now() + ms, waiter)
  if redis.call('PTTL', claims) < ms then redis.call('PEXPIRE', claims, ms) end
end
local function fast_lane_queued(claims, queued, now, patience)
  local since = claims .. ':queued-since'
  if redis.call('LLEN', queued) == 0 then
    redis.call('DEL', since)
    return false
  end
  local first = tonumber(redis.call('GET', since) or '0')
  if first == 0 then
    redis.call('SET', since, now, 'PX', patience * 60)
    return true
  end
  return now - first < patience
end
local function acquire(key, claims, queued, limit, window, member, waiter, grace, patience)
  local now = redis_now()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
  local wait = 0
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(1, tonumber(oldest[2]) + window - now)
  end
  if waiter == '' and (redis.call('ZCARD', claims) > 0
                       or fast_lane_queued(claims, queued, now, patience)) then
    -- A fast-lane caller waits: look again when the next slot is due (or in one slot's time).
    if wait == 0 then wait = math.max(1, math.floor(window / limit)) end
    return wait, 1
  end
  if wait > 0 then
    if waiter ~= '' then claim(claims, waiter, wait + grace) end
    return wait, 0
  end
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  if waiter ~= '' then redis.call('ZREM', claims, waiter) end
  return 0, 0
end
"""

# KEYS: the log, the claims, the fast lane's queue. ARGV: limit, window_ms, member, waiter,
# grace_ms, patience_ms.
_ACQUIRE = (
    ACQUIRE_LUA
    + """
local wait, yielded = acquire(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]),
                              ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return {wait, yielded}
"""
)


class Turn(NamedTuple):
    """One try at the limiter: 0 when a slot was taken, else the milliseconds to wait, and
    whether the wait is giving way to a fast-lane caller."""

    wait_ms: int
    yielded: bool = False


def window_for(rate_per_second: float) -> tuple[int, int]:
    """(limit, window_ms): a whole number of calls per window, at ``rate_per_second``."""
    limit = max(1, math.floor(rate_per_second))
    return limit, math.ceil(limit / rate_per_second * 1000)


class RateLimiter:
    """At most ``rate_per_second`` slots in any sliding window, counted in the Redis ``key``;
    the fast lane's claims in ``key:urgent``. ``fast_lane_queue``: the broker's list of waiting
    fast-lane messages (``<namespace>:emails_urgent``; default: a key nothing writes).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        rate_per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        claim_grace_ms: int = CLAIM_GRACE_MS,
        fast_lane_queue: str | None = None,
        queued_patience_ms: int = QUEUED_PATIENCE_MS,
    ):
        self._limit, self._window_ms = window_for(rate_per_second)
        self.key = key
        self.claims_key = f"{key}:urgent"
        self.claim_grace_ms = claim_grace_ms
        self.fast_lane_queue = fast_lane_queue or f"{key}:no-fast-lane-queue"
        self._queued_patience_ms = queued_patience_ms
        self._sleep = sleep
        self._script = client.register_script(_ACQUIRE)

    @property
    def keys(self) -> list[str]:
        """The keys of :data:`ACQUIRE_LUA`'s ``acquire``: the log, the claims, the queue."""
        return [self.key, self.claims_key, self.fast_lane_queue]

    def acquire_args(self, waiter: str | None = None) -> list:
        """The arguments of ``acquire`` for a call now (after the keys); ``waiter``: the id of a
        fast-lane caller, None for a normal one."""
        return [
            self._limit,
            self._window_ms,
            uuid.uuid4().hex,
            waiter or "",
            self.claim_grace_ms,
            self._queued_patience_ms,
        ]

    def turn(self, waiter: str | None = None) -> Turn:
        """Take a slot if this caller may (``Turn(0)``), else say how long to wait and why."""
        wait_ms, yielded = self._script(keys=self.keys, args=self.acquire_args(waiter))
        return Turn(int(wait_ms), bool(yielded))

    def try_acquire(self, waiter: str | None = None) -> int:
        """Take a slot if one is free to this caller (0), else the milliseconds until then."""
        return self.turn(waiter).wait_ms

    def wait_for(
        self,
        attempt: Callable[[], tuple[Turn, T]],
        max_wait_ms: int,
        *,
        max_yield_ms: int | None = None,
        give_up: Callable[[], bool] | None = None,
    ) -> tuple[int, T]:
        """Repeat ``attempt`` (it returns its :class:`Turn` and a result) sleeping in between,
        as long as the total wait stays within ``max_wait_ms``, the time spent giving way to
        the fast lane within ``max_yield_ms`` (default: no bound of its own), and ``give_up()``
        says no (asked before each sleep and every :data:`GIVE_UP_CHECK_MS` of it: a long wait
        for the window to pass is when an urgent message most needs the thread).

        Returns (0, result) once a slot is taken, else (the wait still due, last result).
        """
        max_yield_ms = max_wait_ms if max_yield_ms is None else max_yield_ms
        waited = yielded = 0
        while True:
            (wait_ms, gave_way), result = attempt()
            if wait_ms == 0 or waited + wait_ms > max_wait_ms:
                return wait_ms, result
            if gave_way and yielded + wait_ms > max_yield_ms:
                return wait_ms, result
            if give_up is not None and give_up():
                return wait_ms, result
            slept = self._sleep_unless(wait_ms, give_up)
            if slept < wait_ms:
                return wait_ms - slept, result
            waited += wait_ms
            yielded += wait_ms if gave_way else 0

    def _sleep_unless(self, wait_ms: int, give_up: Callable[[], bool] | None) -> int:
        """Sleep ``wait_ms``, in slices while ``give_up`` may say stop; returns the ms slept."""
        if give_up is None:
            self._sleep(wait_ms / 1000)
            return wait_ms
        slept = 0
        while slept < wait_ms:
            step = min(GIVE_UP_CHECK_MS, wait_ms - slept)
            self._sleep(step / 1000)
            slept += step
            if slept < wait_ms and give_up():
                break
        return slept
