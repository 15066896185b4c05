"""A circuit breaker on the email provider, shared by every worker process through Redis.

``closed``: calls go through; consecutive transient failures are counted. At the threshold the
circuit ``open``s: nobody calls the provider for ``reset_seconds``. Then it is ``half_open``: one
caller at a time wins the probe; its success closes the circuit, its failure opens it again.
Each transition is one Lua script, so concurrent workers always agree on the state.

The API reads the state for ``/api/health/redis``; without Redis (development) the same logic runs
in memory for the one process there is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Permission:
    """Whether a caller may call the provider now, and if not, how long to wait."""

    allowed: bool
    wait_seconds: float = 0.0
    probe: bool = False


@dataclass(frozen=True)
class CircuitStatus:
    state: CircuitState
    consecutive_failures: int
    opened_at: float | None
    reopens_at: float | None

    def as_dict(self) -> dict:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "reopens_at": self.reopens_at,
        }


# KEYS[1] circuit hash. ARGV: now, reset_seconds, probe_timeout.
# Returns {allowed (0/1), wait_seconds (string), probe (0/1)}.
_ALLOW = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, '0', 0} end
local now = tonumber(ARGV[1])
local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
local reopens_at = opened_at + tonumber(ARGV[2])
if state == 'open' and now < reopens_at then return {0, tostring(reopens_at - now), 0} end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now < probe_until then return {0, tostring(probe_until - now), 0} end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[3]))
return {1, '0', 1}
"""

# KEYS[1]. ARGV: now, threshold. Returns the new state.
_FAILURE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1], 'probe_until', 0)
  return 'open'
end
return state
"""

# KEYS[1]. Returns the previous state.
_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'probe_until', 0)
return state
"""


class _RedisStore:
    """The transitions as Lua scripts: atomic across every process sharing the Redis."""

    def __init__(self, client: redis.Redis, key: str):
        self._client = client
        self._key = key
        self._allow = client.register_script(_ALLOW)
        self._failure = client.register_script(_FAILURE)
        self._success = client.register_script(_SUCCESS)

    def allow(self, now: float, reset: float, probe_timeout: float):
        allowed, wait, probe = self._allow(keys=[self._key], args=[now, reset, probe_timeout])
        return allowed, float(wait), probe

    def failure(self, now: float, threshold: int) -> str:
        return self._failure(keys=[self._key], args=[now, threshold]).decode()

    def success(self) -> str:
        return self._success(keys=[self._key]).decode()

    def read(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self._client.hgetall(self._key).items()}


class _MemoryStore:
    """The same transitions in this process only (development without Redis)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._h: dict[str, str] = {}

    def allow(self, now: float, reset: float, probe_timeout: float):
        with self._lock:
            h = self._h
            state = h.get("state", "closed")
            if state == "closed":
                return 1, 0.0, 0
            reopens_at = float(h.get("opened_at", 0)) + reset
            if state == "open" and now < reopens_at:
                return 0, reopens_at - now, 0
            probe_until = float(h.get("probe_until", 0))
            if now < probe_until:
                return 0, probe_until - now, 0
            h.update(state="half_open", probe_until=str(now + probe_timeout))
            return 1, 0.0, 1

    def failure(self, now: float, threshold: int) -> str:
        with self._lock:
            h = self._h
            state = h.get("state", "closed")
            failures = int(h.get("failures", 0)) + 1
            h["failures"] = str(failures)
            if state == "half_open" or (state == "closed" and failures >= threshold):
                h.update(state="open", opened_at=str(now), probe_until="0")
                return "open"
            return state

    def success(self) -> str:
        with self._lock:
            state = self._h.get("state", "closed")
            self._h.update(state="closed", failures="0", probe_until="0")
            return state

    def read(self) -> dict[str, str]:
        with self._lock:
            return dict(self._h)


class CircuitBreaker:
    """The shared breaker. ``client`` None keeps the state in this process (development)."""

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        key: str,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        probe_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        self._store = _RedisStore(client, key) if client is not None else _MemoryStore()
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._probe_timeout = probe_timeout
        self._clock = clock

    def allow(self) -> Permission:
        """May this caller call the provider now? At most one probe while half-open."""
        allowed, wait, probe = self._store.allow(self._clock(), self._reset, self._probe_timeout)
        return Permission(bool(allowed), wait, bool(probe))

    def record_failure(self) -> CircuitState:
        """Count a transient failure; returns the state after it."""
        return CircuitState(self._store.failure(self._clock(), self._threshold))

    def record_success(self) -> CircuitState:
        """The provider answered: close the circuit. Returns the state before."""
        return CircuitState(self._store.success())

    def status(self) -> CircuitStatus:
        raw = self._store.read()
        state = CircuitState(raw.get("state", "closed"))
        opened_at = float(raw["opened_at"]) if state != CircuitState.CLOSED else None
        return CircuitStatus(
            state=state,
            consecutive_failures=int(raw.get("failures", 0)),
            opened_at=opened_at,
            reopens_at=opened_at + self._reset if opened_at is not None else None,
        )


def email_circuit(client: redis.Redis | None, namespace: str, **options) -> CircuitBreaker:
    """The breaker of the email provider, under the deployment's Redis namespace."""
    return CircuitBreaker(client, key=f"{namespace}:circuit:email", **options)
