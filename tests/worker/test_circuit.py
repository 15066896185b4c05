"""The circuit breaker on the email provider: closed, open, half-open, and held by the provider.

The state lives in the real Redis (under this test's own namespace) as the workers share it.
Time is an injected clock.
"""

from __future__ import annotations

import threading

import pytest
import redis

from tests.support.clocks import ManualClock
from tribe_shared.circuit import CircuitState
from tribe_worker.circuit import CircuitBreaker, email_circuit

THRESHOLD = 5
RESET_SECONDS = 30.0
PROBE_TIMEOUT = 10.0
RECHECK_SECONDS = 2.0
START = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def circuit(client, redis_namespace, clock) -> CircuitBreaker:
    return email_circuit(
        client,
        redis_namespace,
        failure_threshold=THRESHOLD,
        reset_seconds=RESET_SECONDS,
        probe_timeout=PROBE_TIMEOUT,
        recheck_seconds=RECHECK_SECONDS,
        clock=clock,
    )


def open_circuit(circuit: CircuitBreaker) -> None:
    for _ in range(THRESHOLD):
        circuit.record_failure()
    assert circuit.status().state == CircuitState.OPEN


def half_open_circuit(circuit: CircuitBreaker, clock: ManualClock) -> None:
    """Open the circuit, let the reset time pass and take the probe."""
    open_circuit(circuit)
    clock.advance(RESET_SECONDS)
    assert circuit.allow().probe


def test_a_new_circuit_is_closed_and_lets_every_call_through(circuit):
    for _ in range(3):
        permission = circuit.allow()
        assert permission.allowed
        assert not permission.probe
        assert permission.wait_seconds == 0
    assert circuit.status().state == CircuitState.CLOSED


def test_the_circuit_opens_at_the_threshold_of_consecutive_transient_failures(circuit):
    for _ in range(THRESHOLD - 1):
        assert circuit.record_failure() == CircuitState.CLOSED
        assert circuit.allow().allowed

    assert circuit.record_failure() == CircuitState.OPEN

    permission = circuit.allow()
    assert not permission.allowed
    assert permission.wait_seconds == pytest.approx(RESET_SECONDS)
    status = circuit.status()
    assert status.state == CircuitState.OPEN
    assert status.consecutive_failures == THRESHOLD


def test_a_success_resets_the_count_of_consecutive_failures(circuit):
    for _ in range(THRESHOLD - 1):
        circuit.record_failure()

    assert circuit.record_success() == CircuitState.CLOSED
    assert circuit.status().consecutive_failures == 0
    for _ in range(THRESHOLD - 1):
        assert circuit.record_failure() == CircuitState.CLOSED

    assert circuit.allow().allowed
    assert circuit.status().consecutive_failures == THRESHOLD - 1


def test_while_open_nobody_is_allowed_and_the_wait_counts_down(circuit, clock):
    open_circuit(circuit)

    for elapsed in (0.0, 10.0, 29.5):
        clock.now = START + elapsed
        for _ in range(3):
            permission = circuit.allow()
            assert not permission.allowed
            assert not permission.probe
            assert permission.wait_seconds == pytest.approx(RESET_SECONDS - elapsed)
    assert circuit.status().state == CircuitState.OPEN


def test_after_the_reset_time_exactly_one_caller_gets_the_probe(circuit, clock):
    open_circuit(circuit)
    clock.advance(RESET_SECONDS)

    first, second, third = circuit.allow(), circuit.allow(), circuit.allow()

    assert (first.allowed, first.probe) == (True, True)
    for other in (second, third):
        assert (other.allowed, other.probe) == (False, False)
    assert circuit.status().state == CircuitState.HALF_OPEN


def test_while_the_probe_is_out_the_others_look_again_soon_not_at_the_probe_timeout(circuit, clock):
    half_open_circuit(circuit, clock)

    assert circuit.allow().wait_seconds == pytest.approx(RECHECK_SECONDS)
    clock.advance(PROBE_TIMEOUT - 0.5)
    assert circuit.allow().wait_seconds == pytest.approx(0.5)


def test_only_one_of_many_concurrent_callers_gets_the_probe(circuit, clock):
    open_circuit(circuit)
    clock.advance(RESET_SECONDS)
    callers = 32
    start = threading.Barrier(callers)
    permissions = []

    def call():
        start.wait(timeout=10)
        permissions.append(circuit.allow())

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(permissions) == callers
    assert sum(p.probe for p in permissions) == 1
    assert sum(p.allowed for p in permissions) == 1


def test_a_successful_probe_closes_the_circuit(circuit, clock):
    half_open_circuit(circuit, clock)

    assert circuit.record_success() == CircuitState.HALF_OPEN

    status = circuit.status()
    assert status.state == CircuitState.CLOSED
    assert status.consecutive_failures == 0
    assert all(circuit.allow().allowed for _ in range(3))


def test_a_failed_probe_opens_the_circuit_again_for_another_reset_period(circuit, clock):
    half_open_circuit(circuit, clock)
    reopened_at = clock.now

    assert circuit.record_failure() == CircuitState.OPEN

    permission = circuit.allow()
    assert not permission.allowed
    assert permission.wait_seconds == pytest.approx(RESET_SECONDS)
    status = circuit.status()
    assert status.opened_at == pytest.approx(reopened_at)
    assert status.reopens_at == pytest.approx(reopened_at + RESET_SECONDS)


def test_a_probe_that_never_reports_back_is_handed_out_again_after_the_probe_timeout(
    circuit, clock
):
    half_open_circuit(circuit, clock)

    clock.advance(PROBE_TIMEOUT - 0.5)
    assert not circuit.allow().allowed
    clock.advance(0.5)

    assert circuit.allow().probe


def test_hold_opens_a_closed_circuit_until_the_time_given(circuit, clock):
    circuit.hold(12.0)

    permission = circuit.allow()
    assert not permission.allowed
    assert permission.wait_seconds == pytest.approx(12.0)
    status = circuit.status()
    assert status.state == CircuitState.OPEN
    assert status.opened_at == pytest.approx(START)
    assert status.reopens_at == pytest.approx(START + 12.0)

    clock.advance(12.0)
    assert circuit.allow().probe


def test_hold_extends_the_open_time_but_never_shortens_it(circuit, clock):
    circuit.hold(20.0)
    clock.advance(1.0)

    circuit.hold(5.0)  # would end at START + 6: earlier than what was promised
    assert circuit.status().reopens_at == pytest.approx(START + 20.0)
    assert circuit.allow().wait_seconds == pytest.approx(19.0)

    circuit.hold(30.0)
    status = circuit.status()
    assert status.reopens_at == pytest.approx(START + 31.0)
    assert status.opened_at == pytest.approx(START)  # still the same opening


def test_hold_never_shortens_an_opening_caused_by_failures(circuit, clock):
    open_circuit(circuit)

    circuit.hold(1.0)

    assert circuit.status().reopens_at == pytest.approx(START + RESET_SECONDS)
    clock.advance(1.0)
    assert not circuit.allow().allowed


def test_hold_takes_the_probe_back_from_a_half_open_circuit(circuit, clock):
    half_open_circuit(circuit, clock)

    circuit.hold(5.0)

    assert circuit.status().state == CircuitState.OPEN
    clock.advance(5.0)
    assert circuit.allow().probe


def test_status_as_dict_has_the_state_the_failures_and_the_open_times(circuit, clock):
    assert circuit.status().as_dict() == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "reopens_at": None,
    }

    open_circuit(circuit)
    opened = circuit.status().as_dict()
    assert opened == {
        "state": "open",
        "consecutive_failures": THRESHOLD,
        "opened_at": pytest.approx(START),
        "reopens_at": pytest.approx(START + RESET_SECONDS),
    }

    clock.advance(RESET_SECONDS)
    circuit.allow()
    assert circuit.status().as_dict()["state"] == "half_open"


@pytest.mark.redis
def test_workers_with_their_own_clients_share_one_circuit_under_the_namespace(
    redis_url, redis_namespace, clock
):
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        worker_a, worker_b = (
            email_circuit(c, redis_namespace, failure_threshold=THRESHOLD, clock=clock)
            for c in clients
        )

        for _ in range(THRESHOLD):
            worker_a.record_failure()

        assert not worker_b.allow().allowed
        assert worker_b.status().state == CircuitState.OPEN
        assert clients[0].exists(f"{redis_namespace}:circuit:email")
    finally:
        for c in clients:
            c.close()


# --- transitions, told to the caller that made them ----------------------------------------


@pytest.fixture
def transitions() -> list[CircuitState]:
    return []


@pytest.fixture
def told(client, redis_namespace, clock, transitions) -> CircuitBreaker:
    """The breaker of these tests, telling ``transitions`` each move it makes."""
    return email_circuit(
        client,
        redis_namespace,
        failure_threshold=THRESHOLD,
        reset_seconds=RESET_SECONDS,
        probe_timeout=PROBE_TIMEOUT,
        recheck_seconds=RECHECK_SECONDS,
        clock=clock,
        on_transition=transitions.append,
    )


def test_each_transition_is_told_once_to_the_call_that_made_it(told, clock, transitions):
    # Failures below the threshold, and a failure while already open, move nothing
    for _ in range(THRESHOLD):
        told.record_failure()
    told.record_failure()
    assert transitions == [CircuitState.OPEN]

    # The probe half-opens it; the other callers' refusals move nothing
    clock.advance(RESET_SECONDS)
    assert told.allow().half_opened
    assert not told.allow().allowed
    # A probe handed out again after a silent one is no new transition
    clock.advance(PROBE_TIMEOUT)
    probe = told.allow()
    assert probe.probe and not probe.half_opened
    assert transitions == [CircuitState.OPEN, CircuitState.HALF_OPEN]

    # The probe's success closes it; a success while closed moves nothing
    told.record_success()
    told.record_success()
    assert transitions == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_hold_is_a_transition_only_when_the_circuit_was_not_open(told, transitions):
    told.hold(5.0)
    told.hold(10.0)

    assert transitions == [CircuitState.OPEN]


def test_a_breaker_without_a_listener_behaves_the_same(circuit, clock):
    half_open_circuit(circuit, clock)

    assert circuit.record_failure() == CircuitState.OPEN
