"""The rate limit and the circuit breaker asked together, as a worker asks them before every
provider call: one Redis round trip (one script) per try, with each gate's own logic. Without
Redis (development) nothing is held back."""

from __future__ import annotations

import threading

import pytest
import redis

from tests.support.clocks import ManualClock, RecordingSleep
from tribe_shared.circuit import CircuitState
from tribe_worker.circuit import email_circuit
from tribe_worker.gates import Gates, OpenGates
from tribe_worker.ratelimit import RateLimiter

RESET_SECONDS = 30.0
THRESHOLD = 3
START = 1_700_000_000.0


class CountingRedis(redis.Redis):
    """The redis client, noting every command it sends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    def execute_command(self, *args, **options):
        self.commands.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def build_gates(client, namespace, clock, sleep, rate: float = 1.0) -> Gates:
    limiter = RateLimiter(
        client, key=f"{namespace}:ratelimit:email", rate_per_second=rate, sleep=sleep
    )
    circuit = email_circuit(
        client, namespace, failure_threshold=THRESHOLD, reset_seconds=RESET_SECONDS, clock=clock
    )
    return Gates(client, limiter, circuit)


@pytest.fixture
def gates(client, redis_namespace, clock, sleep) -> Gates:
    return build_gates(client, redis_namespace, clock, sleep)


def open_circuit(gates: Gates) -> None:
    for _ in range(THRESHOLD):
        gates.circuit.record_failure()
    assert gates.circuit.status().state == CircuitState.OPEN


def test_a_free_slot_and_a_closed_circuit_let_the_call_through_and_take_the_slot(gates):
    wait_ms, permission = gates.enter(max_wait_ms=0)

    assert wait_ms == 0
    assert permission.allowed and permission.clean and not permission.probe
    # ... the slot is taken: the limiter (1 per second) has none left
    assert gates.limiter.try_acquire() > 0


def test_with_no_slot_free_the_wait_is_given_back_and_the_circuit_is_not_asked(gates, clock):
    # Given an open circuit whose probe is due, and a rate limit with no slot left
    open_circuit(gates)
    clock.now += RESET_SECONDS
    assert gates.limiter.try_acquire() == 0

    # When a caller unwilling to wait tries the gates
    wait_ms, permission = gates.enter(max_wait_ms=0)

    # Then it is told how long until a slot frees up, and the probe is still there to take
    assert 0 < wait_ms <= 1000
    assert permission is None
    assert gates.circuit.allow().probe


def test_a_caller_willing_to_wait_sleeps_until_a_slot_frees_up(gates, sleep):
    assert gates.limiter.try_acquire() == 0

    gates.enter(max_wait_ms=2000)

    assert sleep.seconds
    assert all(0 < s <= 1 for s in sleep.seconds)


def test_an_open_circuit_denies_the_call_with_the_time_until_it_reopens(gates, clock):
    open_circuit(gates)
    clock.now += 10

    wait_ms, permission = gates.enter(max_wait_ms=0)

    assert wait_ms == 0
    assert not permission.allowed
    assert permission.wait_seconds == pytest.approx(RESET_SECONDS - 10)


def test_only_one_of_many_concurrent_callers_gets_the_probe(client, redis_namespace, clock, sleep):
    # Given a half-open-due circuit and callers on their own gates (as worker processes are)
    gates = [build_gates(client, redis_namespace, clock, sleep, rate=1e6) for _ in range(4)]
    open_circuit(gates[0])
    clock.now += RESET_SECONDS
    permissions = []
    start = threading.Barrier(16)

    def call(g: Gates):
        start.wait(timeout=10)
        permissions.append(g.enter(max_wait_ms=0)[1])

    threads = [threading.Thread(target=call, args=(gates[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(permissions) == 16
    assert sum(p.allowed for p in permissions) == 1
    assert sum(p.probe for p in permissions) == 1


@pytest.mark.redis
def test_on_redis_each_try_is_one_round_trip(redis_url, redis_namespace, clock, sleep):
    client = CountingRedis.from_url(redis_url)
    gates = build_gates(client, redis_namespace, clock, sleep, rate=1e6)
    gates.enter(max_wait_ms=0)  # loads the script the first time

    client.commands.clear()
    wait_ms, permission = gates.enter(max_wait_ms=0)

    assert (wait_ms, permission.allowed) == (0, True)
    assert client.commands == ["EVALSHA"]
    client.close()


def test_without_redis_the_gates_let_every_call_through_and_nothing_opens():
    # Given the development stand-in (one process, no Redis to share a limit or a breaker with)
    gates = OpenGates(reset_seconds=RESET_SECONDS)

    # When many calls go through and the provider keeps failing
    permissions = [gates.enter(max_wait_ms=0) for _ in range(100)]
    for _ in range(THRESHOLD * 2):
        gates.circuit.record_failure()
    gates.circuit.trip()

    # Then none waited, and every later call still goes through at once
    assert all(wait == 0 and p.allowed and p.clean for wait, p in permissions)
    wait_ms, permission = gates.enter(max_wait_ms=0)
    assert (wait_ms, permission.allowed) == (0, True)
    assert gates.circuit.reset_seconds == RESET_SECONDS
