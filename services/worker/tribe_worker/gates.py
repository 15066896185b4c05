"""The two gates of every email provider call, passed in one Redis round trip: the global rate
limit, then the circuit breaker.

One script runs both, with the very Lua functions each runs on its own
(:data:`tribe_worker.ratelimit.ACQUIRE_LUA`, then :data:`tribe_worker.circuit.ALLOW_LUA`), so the
logic is theirs: the circuit is asked only once a rate slot is taken. A fast-lane caller (an
urgent or high job) the circuit turns away keeps its claim on the next slot until it is due back
(the circuit's wait, spread as its message's delay is, plus the limiter's grace): once the
circuit closes, the urgent jobs held during the outage pass first, and normal ones yield to them.

Without Redis (development: one process, one in-memory broker) a shared limit and a shared
breaker protect nothing; :class:`OpenGates` lets every call through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import redis

from tribe_worker.circuit import ALLOW_LUA, CircuitBreaker, NoCircuit, Permission
from tribe_worker.ratelimit import ACQUIRE_LUA, RateLimiter, Turn

#: How much later than the circuit's wait a held message may come back (its delay's spread,
#: :func:`tribe_worker.compose.spread_ms`).
HELD_SPREAD = 1.2

# KEYS: the rate limit's log, claims and fast-lane queue, the circuit's hash. ARGV: limit,
# window_ms, member, waiter, grace_ms, patience_ms (the rate limit's), now, probe_timeout,
# recheck_seconds (the circuit's), held_spread. Returns {wait_ms, yielded} when this caller
# gets no rate slot, else {0, allowed, wait_seconds, probe, clean}.
_PASS = (
    ACQUIRE_LUA
    + ALLOW_LUA
    + """
local waiter, grace = ARGV[4], tonumber(ARGV[5])
local wait, yielded = acquire(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]),
                              ARGV[3], waiter, grace, tonumber(ARGV[6]))
if wait > 0 then return {wait, yielded} end
local p = allow(KEYS[4], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
if p[1] == 0 and waiter ~= '' then
  claim(KEYS[2], waiter, tonumber(p[2]) * 1000 * tonumber(ARGV[10]) + grace)
end
return {0, p[1], p[2], p[3], p[4]}
"""
)


class Circuit(Protocol):
    """What delivery tells the circuit (:class:`CircuitBreaker`, or :class:`NoCircuit`)."""

    reset_seconds: float

    def record_failure(self) -> object: ...

    def record_success(self) -> object: ...

    def hold(self, seconds: float) -> None: ...

    def trip(self) -> None: ...


class Gates:
    """The rate limiter and the circuit breaker of the email provider, asked together."""

    def __init__(self, client: redis.Redis, limiter: RateLimiter, circuit: CircuitBreaker):
        self.limiter = limiter
        self.circuit: Circuit = circuit
        self._breaker = circuit
        self._script = client.register_script(_PASS)

    def enter(
        self,
        max_wait_ms: int,
        *,
        waiter: str | None = None,
        max_yield_ms: int | None = None,
        give_up: Callable[[], bool] | None = None,
    ) -> tuple[int, Permission | None]:
        """Wait for a rate slot up to ``max_wait_ms``, then ask the circuit.

        ``waiter``: the id of a fast-lane caller (its first job's), which normal callers yield
        to; None for a normal caller, which gives way for at most ``max_yield_ms``, and stops
        waiting as soon as ``give_up()`` says so.
        Returns (0, the circuit's permission) once a slot is taken, else (the wait still due,
        None): the caller defers instead of waiting longer.
        """
        return self.limiter.wait_for(
            lambda: self._try(waiter), max_wait_ms, max_yield_ms=max_yield_ms, give_up=give_up
        )

    def _try(self, waiter: str | None) -> tuple[Turn, Permission | None]:
        keys = [*self.limiter.keys, self._breaker.key]
        args = [*self.limiter.acquire_args(waiter), *self._breaker.allow_args(), HELD_SPREAD]
        reply = self._script(keys=keys, args=args)
        if reply[0]:
            return Turn(int(reply[0]), bool(reply[1])), None
        return Turn(0), self._breaker.permission(*reply[1:])


#: What :class:`OpenGates` answers: go ahead, nothing to report back.
_GO = Permission(allowed=True, clean=True)


class OpenGates:
    """The development stand-in: no rate limit, no breaker."""

    def __init__(self, reset_seconds: float = 30.0):
        self.circuit: Circuit = NoCircuit(reset_seconds)

    def enter(self, max_wait_ms: int, **_) -> tuple[int, Permission | None]:
        return 0, _GO
