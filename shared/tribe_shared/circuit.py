"""A circuit breaker on the email provider, shared by every worker process through Redis.

``closed``: calls go through; consecutive transient failures are counted. At the threshold the
circuit ``open``s: nobody calls the provider for ``reset_seconds``. A provider that says how long
to wait (429 with a reset time) opens it for that long (:meth:`CircuitBreaker.hold`). Then it is
``half_open``: one caller at a time wins the probe; its success closes the circuit, its failure
opens it again.
Each transition is one Lua script, so concurrent workers always agree on the state, and the one
caller whose script made a transition learns it (``on_transition``: the worker counts them).

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
    #: Closed with no failure counted: a success has nothing to reset.
    clean: bool = False
    #: This call moved the circuit from ``open`` to ``half_open`` (a probe after a timed-out
    #: probe is a probe too, but no transition).
    half_opened: bool = False


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

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> CircuitStatus:
        """The status stored in the breaker's Redis hash (an empty hash is a closed circuit)."""
        state = CircuitState(raw.get("state", "closed"))
        is_open = state != CircuitState.CLOSED
        return cls(
            state=state,
            consecutive_failures=int(raw.get("failures", 0)),
            opened_at=float(raw["opened_at"]) if is_open else None,
            reopens_at=float(raw["reopens_at"]) if is_open else None,
        )


#: Lua function ``allow(key, now, probe_timeout, recheck_seconds)`` on the circuit hash: returns
#: {allowed (0/1), wait_seconds (string), probe (0 no, 1 after open, 2 after a timed-out probe),
#: clean (closed, no failures: 0/1)}.
#: Run by :meth:`CircuitBreaker.allow` and, after the rate limit's, by the worker's gate script.
ALLOW_LUA = """
local function allow(key, now, probe_timeout, recheck)
  local state = redis.call('HGET', key, 'state') or 'closed'
  if state == 'closed' then
    local failures = tonumber(redis.call('HGET', key, 'failures') or '0')
    return {1, '0', 0, failures == 0 and 1 or 0}
  end
  local reopens_at = tonumber(redis.call('HGET', key, 'reopens_at') or '0')
  if state == 'open' and now < reopens_at then return {0, tostring(reopens_at - now), 0, 0} end
  local probe_until = tonumber(redis.call('HGET', key, 'probe_until') or '0')
  if now < probe_until then
    return {0, tostring(math.min(probe_until - now, recheck)), 0, 0}
  end
  redis.call('HSET', key, 'state', 'half_open', 'probe_until', now + probe_timeout)
  return {1, '0', state == 'open' and 1 or 2, 0}
end
"""

# KEYS[1] circuit hash. ARGV: now, probe_timeout, recheck_seconds.
_ALLOW = (
    ALLOW_LUA + "return allow(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))"
)

# KEYS[1]. ARGV: now, threshold, reset_seconds. Returns {the state before, the state after}.
_FAILURE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[2])) then
  local now = tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now,
             'reopens_at', now + tonumber(ARGV[3]), 'probe_until', 0)
  return {state, 'open'}
end
return {state, state}
"""

# KEYS[1]. ARGV: now, seconds. Open now and stay open at least that long (provider said wait).
# Returns the state before.
_HOLD = """
local now = tonumber(ARGV[1])
local until_at = now + tonumber(ARGV[2])
local reopens_at = tonumber(redis.call('HGET', KEYS[1], 'reopens_at') or '0')
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state ~= 'open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
end
redis.call('HSET', KEYS[1], 'reopens_at', math.max(reopens_at, until_at), 'probe_until', 0)
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
        self.key = key
        self._allow = client.register_script(_ALLOW)
        self._failure = client.register_script(_FAILURE)
        self._hold = client.register_script(_HOLD)
        self._success = client.register_script(_SUCCESS)

    def allow(self, now: float, probe_timeout: float, recheck: float):
        return self._allow(keys=[self.key], args=[now, probe_timeout, recheck])

    def failure(self, now: float, threshold: int, reset: float) -> tuple[str, str]:
        before, after = self._failure(keys=[self.key], args=[now, threshold, reset])
        return before.decode(), after.decode()

    def hold(self, now: float, seconds: float) -> str:
        return self._hold(keys=[self.key], args=[now, seconds]).decode()

    def success(self) -> str:
        return self._success(keys=[self.key]).decode()

    def read(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self._client.hgetall(self.key).items()}


class _MemoryStore:
    """The same transitions in this process only (development without Redis)."""

    #: No Redis key: the state is here.
    key = None

    def __init__(self):
        self._lock = threading.Lock()
        self._h: dict[str, str] = {}

    def allow(self, now: float, probe_timeout: float, recheck: float):
        with self._lock:
            h = self._h
            state = h.get("state", "closed")
            if state == "closed":
                return 1, 0.0, 0, int(h.get("failures", 0)) == 0
            reopens_at = float(h.get("reopens_at", 0))
            if state == "open" and now < reopens_at:
                return 0, reopens_at - now, 0, 0
            probe_until = float(h.get("probe_until", 0))
            if now < probe_until:
                return 0, min(probe_until - now, recheck), 0, 0
            h.update(state="half_open", probe_until=str(now + probe_timeout))
            return 1, 0.0, 1 if state == "open" else 2, 0

    def failure(self, now: float, threshold: int, reset: float) -> tuple[str, str]:
        with self._lock:
            h = self._h
            state = h.get("state", "closed")
            failures = int(h.get("failures", 0)) + 1
            h["failures"] = str(failures)
            if state == "half_open" or (state == "closed" and failures >= threshold):
                h.update(
                    state="open", opened_at=str(now), reopens_at=str(now + reset), probe_until="0"
                )
                return state, "open"
            return state, state

    def hold(self, now: float, seconds: float) -> str:
        with self._lock:
            h = self._h
            state = h.get("state", "closed")
            if state != "open":
                h.update(state="open", opened_at=str(now))
            reopens_at = max(float(h.get("reopens_at", 0)), now + seconds)
            h.update(reopens_at=str(reopens_at), probe_until="0")
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
    """The shared breaker. ``client`` None keeps the state in this process (development).

    ``on_transition`` is called with the new state each time a call of this breaker moved the
    circuit (the worker counts them; see ``tribe_worker.metrics``).

    While a probe is out, the others are told to look again within ``recheck_seconds``, not at
    the end of ``probe_timeout``: a probe usually answers at once, and a closed circuit should
    not keep the jobs waiting.
    """

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        key: str,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        probe_timeout: float = 30.0,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[CircuitState], None] | None = None,
    ):
        self._store = _RedisStore(client, key) if client is not None else _MemoryStore()
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._probe_timeout = probe_timeout
        self._recheck = recheck_seconds
        self._clock = clock
        self._on_transition = on_transition

    def allow(self) -> Permission:
        """May this caller call the provider now? At most one probe while half-open."""
        return self.permission(*self._store.allow(*self.allow_call()[1]))

    @property
    def shared(self) -> bool:
        """Whether the state is in Redis (else in this process)."""
        return isinstance(self._store, _RedisStore)

    def allow_call(self) -> tuple[str | None, list]:
        """The key (None in memory) and arguments of :data:`ALLOW_LUA`'s ``allow`` for now."""
        return self._store.key, [self._clock(), self._probe_timeout, self._recheck]

    def permission(self, allowed, wait_seconds, probe, clean) -> Permission:
        """The :class:`Permission` of what ``allow`` returned; a transition is told as such."""
        granted = Permission(
            bool(allowed), float(wait_seconds), bool(probe), bool(clean), int(probe) == 1
        )
        if granted.half_opened:
            self._transitioned(CircuitState.OPEN, CircuitState.HALF_OPEN)
        return granted

    def record_failure(self) -> CircuitState:
        """Count a transient failure; returns the state after it."""
        before, after = self._store.failure(self._clock(), self._threshold, self._reset)
        return self._transitioned(CircuitState(before), CircuitState(after))

    def hold(self, seconds: float) -> None:
        """Open now and let nobody call for ``seconds`` (the provider asked us to wait)."""
        before = self._store.hold(self._clock(), seconds)
        self._transitioned(CircuitState(before), CircuitState.OPEN)

    def trip(self) -> None:
        """Open now, whatever the count, for the reset interval; then one probe as usual.

        For a failure every call would meet (the provider refused our credentials).
        """
        self.hold(self._reset)

    @property
    def reset_seconds(self) -> float:
        return self._reset

    def record_success(self) -> CircuitState:
        """The provider answered: close the circuit. Returns the state before."""
        before = CircuitState(self._store.success())
        self._transitioned(before, CircuitState.CLOSED)
        return before

    def _transitioned(self, before: CircuitState, after: CircuitState) -> CircuitState:
        if before != after and self._on_transition is not None:
            self._on_transition(after)
        return after

    def status(self) -> CircuitStatus:
        return CircuitStatus.from_hash(self._store.read())


def email_circuit_key(namespace: str) -> str:
    """The Redis hash of the email provider's breaker (readers may ``HGETALL`` it)."""
    return f"{namespace}:circuit:email"


def email_circuit(client: redis.Redis | None, namespace: str, **options) -> CircuitBreaker:
    """The breaker of the email provider, under the deployment's Redis namespace."""
    return CircuitBreaker(client, key=email_circuit_key(namespace), **options)
