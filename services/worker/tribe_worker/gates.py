"""The two gates of every email provider call, passed in one Redis round trip: the global rate
limit, then the circuit breaker.

One script runs both, with the very Lua functions each runs on its own
(:data:`tribe_worker.ratelimit.ACQUIRE_LUA`, then :data:`tribe_worker.circuit.ALLOW_LUA`), so the
logic is theirs: the circuit is asked only once a rate slot is taken.

Without Redis (development: one process, one in-memory broker) a shared limit and a shared
breaker protect nothing; :class:`OpenGates` lets every call through.
"""

from __future__ import annotations

from typing import Protocol

import redis

from tribe_worker.circuit import ALLOW_LUA, CircuitBreaker, NoCircuit, Permission
from tribe_worker.ratelimit import ACQUIRE_LUA, RateLimiter

# KEYS: the rate limit's log, the circuit's hash. ARGV: limit, window_ms, member (the rate
# limit's), now, probe_timeout, recheck_seconds (the circuit's).
# Returns {wait_ms} when no rate slot is free, else {0, allowed, wait_seconds, probe, clean}.
_PASS = (
    ACQUIRE_LUA
    + ALLOW_LUA
    + """
local wait = acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
if wait > 0 then return {wait} end
local p = allow(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
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

    def enter(self, max_wait_ms: int) -> tuple[int, Permission | None]:
        """Wait for a rate slot up to ``max_wait_ms``, then ask the circuit.

        Returns (0, the circuit's permission) once a slot is taken, else (the wait still due,
        None): the caller defers instead of waiting longer.
        """
        return self.limiter.wait_for(self._try, max_wait_ms)

    def _try(self) -> tuple[int, Permission | None]:
        keys = [self.limiter.key, self._breaker.key]
        reply = self._script(
            keys=keys, args=[*self.limiter.acquire_args(), *self._breaker.allow_args()]
        )
        if reply[0]:
            return int(reply[0]), None
        return 0, self._breaker.permission(*reply[1:])


#: What :class:`OpenGates` answers: go ahead, nothing to report back.
_GO = Permission(allowed=True, clean=True)


class OpenGates:
    """The development stand-in: no rate limit, no breaker."""

    def __init__(self, reset_seconds: float = 30.0):
        self.circuit: Circuit = NoCircuit(reset_seconds)

    def enter(self, max_wait_ms: int) -> tuple[int, Permission | None]:
        return 0, _GO
