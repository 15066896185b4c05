"""The circuit breaker on the email provider, shared by every worker process through Redis.

``closed``: calls go through; consecutive transient failures are counted. At the threshold the
circuit ``open``s: nobody calls the provider for ``reset_seconds``. A provider that says how long
to wait (429 with a reset time) opens it for that long (:meth:`CircuitBreaker.hold`). Then it is
``half_open``: one caller at a time wins the probe; its success closes the circuit, its failure
opens it again. Each transition is one Lua script, so concurrent workers always agree on the
state, and the one caller whose script made a transition learns it (``on_transition``: the
worker counts them). The state lives in the hash :func:`tribe_shared.circuit.email_circuit_key`,
which the API reads.

Without Redis (development, one process) there is nothing to share: :class:`NoCircuit` stands in
and never opens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tribe_shared.circuit import CircuitState, CircuitStatus, email_circuit_key, sms_circuit_key


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


class CircuitBreaker:
    """The shared breaker, its state in the Redis hash ``key``.

    ``on_transition`` is called with the new state each time a call of this breaker moved the
    circuit (the worker counts them; see ``tribe_worker.metrics``).

    While a probe is out, the others are told to look again within ``recheck_seconds``, not at
    the end of ``probe_timeout``: a probe usually answers at once, and a closed circuit should
    not keep the jobs waiting.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        probe_timeout: float = 30.0,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_transition: Callable[[CircuitState], None] | None = None,
    ):
        self._client = client
        self.key = key
        self._allow = client.register_script(_ALLOW)
        self._failure = client.register_script(_FAILURE)
        self._hold = client.register_script(_HOLD)
        self._success = client.register_script(_SUCCESS)
        self._threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._probe_timeout = probe_timeout
        self._recheck = recheck_seconds
        self._clock = clock
        self._on_transition = on_transition

    def allow(self) -> Permission:
        """May this caller call the provider now? At most one probe while half-open."""
        return self.permission(*self._allow(keys=[self.key], args=self.allow_args()))

    def allow_args(self) -> list:
        """The arguments of :data:`ALLOW_LUA`'s ``allow`` for a call now (after the key)."""
        return [self._clock(), self._probe_timeout, self._recheck]

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
        args = [self._clock(), self._threshold, self.reset_seconds]
        before, after = self._failure(keys=[self.key], args=args)
        return self._transitioned(CircuitState(before.decode()), CircuitState(after.decode()))

    def hold(self, seconds: float) -> None:
        """Open now and let nobody call for ``seconds`` (the provider asked us to wait)."""
        before = self._hold(keys=[self.key], args=[self._clock(), seconds]).decode()
        self._transitioned(CircuitState(before), CircuitState.OPEN)

    def trip(self) -> None:
        """Open now, whatever the count, for the reset interval; then one probe as usual.

        For a failure every call would meet (the provider refused our credentials).
        """
        self.hold(self.reset_seconds)

    def record_success(self) -> CircuitState:
        """The provider answered: close the circuit. Returns the state before."""
        before = CircuitState(self._success(keys=[self.key]).decode())
        self._transitioned(before, CircuitState.CLOSED)
        return before

    def status(self) -> CircuitStatus:
        raw = self._client.hgetall(self.key)
        return CircuitStatus.from_hash({k.decode(): v.decode() for k, v in raw.items()})

    def _transitioned(self, before: CircuitState, after: CircuitState) -> CircuitState:
        if before != after and self._on_transition is not None:
            self._on_transition(after)
        return after


class NoCircuit:
    """The development stand-in: one process calls the provider directly, and nothing opens."""

    def __init__(self, reset_seconds: float = 30.0):
        self.reset_seconds = reset_seconds

    def record_failure(self) -> CircuitState:
        return CircuitState.CLOSED

    def hold(self, seconds: float) -> None:
        pass

    def trip(self) -> None:
        pass

    def record_success(self) -> CircuitState:
        return CircuitState.CLOSED


def email_circuit(client: redis.Redis, namespace: str, **options) -> CircuitBreaker:
    """The breaker of the email provider, under the deployment's Redis namespace."""
    return CircuitBreaker(client, key=email_circuit_key(namespace), **options)


def sms_circuit(client: redis.Redis, namespace: str, **options) -> CircuitBreaker:
    """The breaker of the SMS/WhatsApp provider (Twilio), apart from the email provider's."""
    return CircuitBreaker(client, key=sms_circuit_key(namespace), **options)
