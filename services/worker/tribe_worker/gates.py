"""The two gates of every provider call, passed in one Redis round trip: the rate limit, then
the circuit breaker.

Asking them in turn cost two Lua scripts per email. One script now runs both, with the very
Lua functions each runs on its own (:data:`tribe_worker.ratelimit.ACQUIRE_LUA`, then
:data:`tribe_shared.circuit.ALLOW_LUA`), so the logic is theirs: the circuit is asked only once a
rate slot is taken, as before. Without Redis (development) the in-memory gates are asked in turn.
"""

from __future__ import annotations

import redis

from tribe_shared.circuit import ALLOW_LUA, CircuitBreaker, Permission
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


class Gates:
    """The rate limiter and the circuit breaker of the email provider, asked together.

    ``client`` is the Redis both keep their state in, or None when both keep it in memory.
    """

    def __init__(self, client: redis.Redis | None, limiter: RateLimiter, circuit: CircuitBreaker):
        if (client is not None) != limiter.shared or limiter.shared != circuit.shared:
            raise ValueError("the gates must share one Redis, or all keep their state in memory")
        self.limiter = limiter
        self.circuit = circuit
        self._script = client.register_script(_PASS) if client is not None else None

    def enter(self, max_wait_ms: int) -> tuple[int, Permission | None]:
        """Wait for a rate slot up to ``max_wait_ms``, then ask the circuit.

        Returns (0, the circuit's permission) once a slot is taken, else (the wait still due,
        None): the caller defers instead of waiting longer.
        """
        return self.limiter.wait_for(self._try, max_wait_ms)

    def _try(self) -> tuple[int, Permission | None]:
        if self._script is None:
            wait_ms = self.limiter.try_acquire()
            return (wait_ms, None) if wait_ms else (0, self.circuit.allow())
        limit_key, limit_args = self.limiter.acquire_call()
        circuit_key, circuit_args = self.circuit.allow_call()
        reply = self._script(keys=[limit_key, circuit_key], args=[*limit_args, *circuit_args])
        if reply[0]:
            return int(reply[0]), None
        return 0, self.circuit.permission(*reply[1:])
