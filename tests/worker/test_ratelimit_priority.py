"""Urgent first at the global rate limit (issue #19): a fast-lane caller (an urgent or high job)
that finds no slot free claims the next one, normal callers yield to it, and the limit stays
exact in every window (real Redis, this test's own keys)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.clocks import ManualClock, RecordingSleep
from tests.support.waiting import wait_until
from tests.worker.test_ratelimit import busiest_window, hammer
from tribe_worker.circuit import email_circuit
from tribe_worker.gates import HELD_SPREAD, Gates
from tribe_worker.ratelimit import GIVE_UP_CHECK_MS, RateLimiter, Turn, window_for

RATE = 10.0
LIMIT, WINDOW_MS = window_for(RATE)
GRACE_MS = 3_000


@pytest.fixture
def key(redis_namespace) -> str:
    return f"{redis_namespace}:ratelimit:email"


@pytest.fixture
def limiter(client, key) -> RateLimiter:
    return RateLimiter(client, key=key, rate_per_second=RATE, claim_grace_ms=GRACE_MS)


def fill(limiter: RateLimiter) -> None:
    assert [limiter.try_acquire() for _ in range(LIMIT)] == [0] * LIMIT


def claims(client, limiter: RateLimiter) -> dict[str, float]:
    return {m.decode(): s for m, s in client.zrange(limiter.claims_key, 0, -1, withscores=True)}


def redis_ms(client) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def test_a_normal_caller_yields_the_next_slot_to_a_waiting_urgent_one(client, limiter, key):
    # Given a full window and an urgent caller told to wait for the next slot
    fill(limiter)
    urgent = limiter.turn(waiter="job-1")
    assert urgent.wait_ms > 0 and not urgent.yielded

    # When the window passes (its calls age out) and a normal caller comes first
    client.delete(key)
    normal = limiter.turn()

    # Then the normal caller takes nothing and waits about one slot's time, giving way
    assert normal == Turn(WINDOW_MS // LIMIT, yielded=True)
    assert client.zcard(key) == 0
    # ... the urgent caller takes the slot and its claim ends; normal callers go on
    assert limiter.turn(waiter="job-1") == Turn(0)
    assert claims(client, limiter) == {}
    assert limiter.turn() == Turn(0)


def test_an_urgent_callers_claim_lasts_its_wait_and_the_grace(client, limiter):
    fill(limiter)
    before = redis_ms(client)

    wait_ms = limiter.try_acquire(waiter="job-1")

    (lapses_at,) = claims(client, limiter).values()
    assert before + wait_ms + GRACE_MS <= lapses_at <= redis_ms(client) + wait_ms + GRACE_MS
    assert 0 < client.pttl(limiter.claims_key) <= wait_ms + GRACE_MS


def test_a_lapsed_claim_holds_nobody_back(client, limiter):
    # Given an urgent caller that claimed the next slot and never came back
    fill(limiter)
    limiter.try_acquire(waiter="gone")
    client.zadd(limiter.claims_key, {"gone": redis_ms(client) - 1})  # its claim has lapsed

    # Then normal callers are not told to yield
    turn = limiter.turn()
    assert turn.wait_ms > 0 and not turn.yielded
    assert claims(client, limiter) == {}


def test_urgent_callers_do_not_yield_to_each_other(limiter):
    fill(limiter)
    limiter.try_acquire(waiter="job-1")

    turn = limiter.turn(waiter="job-2")

    assert turn.wait_ms > 0 and not turn.yielded


def test_a_normal_caller_gives_way_for_at_most_its_yield_budget(client, key):
    # Given an urgent caller waiting, and time standing still (the claim never ends)
    sleep = RecordingSleep()
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)
    fill(limiter)
    limiter.try_acquire(waiter="job-1")
    client.delete(key)

    # When a normal caller willing to wait 2 s, but to give way for only 250 ms, tries
    wait_ms, _ = limiter.wait_for(lambda: (limiter.turn(), None), 2_000, max_yield_ms=250)

    # Then it gives up (to defer its message, freeing its thread) within the budget
    assert wait_ms > 0
    assert sleep.seconds and sum(sleep.seconds) <= 0.25


def test_with_urgent_and_normal_callers_hammering_the_limit_still_holds(client, key):
    # Given limiters of two workers, one of whose threads are all fast-lane callers
    limiters = [RateLimiter(client, key=key, rate_per_second=RATE) for _ in range(2)]
    urgent = UrgentLimiter(limiters[0])

    # When threads of both hammer them for a few windows
    successes = hammer([urgent, limiters[1]], 8, 2.2)

    # Then no window held more than the limit (see test_ratelimit for the measure)
    assert len(successes) > LIMIT * 2
    assert busiest_window(successes, LIMIT) >= WINDOW_MS / 1000 - 0.002


class UrgentLimiter:
    """A limiter whose every caller is a fast-lane one, each thread its own waiter."""

    def __init__(self, limiter: RateLimiter):
        self._limiter = limiter

    def try_acquire(self) -> int:
        return self._limiter.try_acquire(waiter=f"thread-{threading.get_ident()}")


def test_an_urgent_caller_gets_the_next_slot_while_normal_callers_wait_in_their_threads(
    client, key
):
    # Given normal callers waiting at a full limit in their threads, as workers do; each
    # success is noted with the time its try began (what it asked Redis is later than that)
    limiters = [RateLimiter(client, key=key, rate_per_second=RATE) for _ in range(2)]
    taken: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def normal(limiter: RateLimiter):
        def attempt():
            began = time.time()
            turn = limiter.turn()
            if turn.wait_ms == 0:
                with lock:
                    taken.append(began)
            return turn, None

        while not stop.is_set():
            limiter.wait_for(attempt, 2_000)

    threads = [threading.Thread(target=normal, args=(limiters[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(taken) >= LIMIT * 2, what="the normal callers to fill windows")

        # When an urgent caller arrives and, finding no slot free, claims the next one
        urgent = limiters[0]
        while urgent.try_acquire(waiter="job-1") == 0:
            pass  # a slot was free: it went at once; the next try meets the full window
        claimed = time.time()
        began: list[float] = []

        def urgent_attempt():
            began.append(time.time())
            return urgent.turn(waiter="job-1"), None

        wait_ms, _ = urgent.wait_for(urgent_attempt, 10_000)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    # Then it got the next slot: no normal caller that asked after the claim got one before it
    # (at most one whose try began a moment before the urgent one's yet reached Redis after it)
    assert wait_ms == 0
    assert began[-1] - claimed <= WINDOW_MS / 1000 + 0.5  # a window, and a loaded machine
    assert sum(1 for t in taken if claimed < t < began[-1]) <= 1


def test_an_urgent_caller_turned_away_by_the_circuit_keeps_its_claim(client, redis_namespace):
    # Given an open circuit with 10 s to go
    clock = ManualClock(1_700_000_000.0)
    limiter = RateLimiter(
        client,
        key=f"{redis_namespace}:ratelimit:email",
        rate_per_second=1e6,
        sleep=RecordingSleep(),
    )
    circuit = email_circuit(client, redis_namespace, reset_seconds=10.0, clock=clock)
    gates = Gates(client, limiter, circuit)
    circuit.trip()

    # When an urgent caller is turned away by it
    before = redis_ms(client)
    wait_ms, permission = gates.enter(0, waiter="job-1")
    assert (wait_ms, permission.allowed) == (0, False)

    # Then its claim outlasts the time its message is deferred for, and normal callers yield
    (lapses_at,) = claims(client, limiter).values()
    assert lapses_at >= before + 10_000 * HELD_SPREAD + limiter.claim_grace_ms
    wait_ms, permission = gates.enter(0)
    assert wait_ms > 0 and permission is None
    # ... until the urgent job is back, passes the closed circuit and its claim ends
    circuit.record_success()
    wait_ms, permission = gates.enter(0, waiter="job-1")
    assert (wait_ms, permission.allowed) == (0, True)
    assert claims(client, limiter) == {}
    assert gates.enter(0)[0] == 0


def test_a_caller_stops_waiting_as_soon_as_it_is_told_to_give_up(client, key):
    # Given a full window and time standing still
    sleep = RecordingSleep()
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)
    fill(limiter)

    # When a normal caller learns, after one sleep, that an urgent message wants its thread
    answers = iter([False, True])
    wait_ms, _ = limiter.wait_for(
        lambda: (limiter.turn(), None), 2_000, give_up=lambda: next(answers)
    )

    # Then it gives the wait back (to defer its message) after that one sleep
    assert wait_ms > 0
    assert len(sleep.seconds) == 1


def test_normal_callers_yield_while_a_fast_lane_message_waits_on_the_broker(client, key):
    # Given an urgent message on the broker that no worker has fetched yet
    queue = f"{key}:emails_urgent"
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, fast_lane_queue=queue)
    client.rpush(queue, "message-1")

    # Then a normal caller takes no slot, though one is free
    assert limiter.turn() == Turn(WINDOW_MS // LIMIT, yielded=True)
    assert client.zcard(key) == 0
    # ... until a worker fetches it
    client.lpop(queue)
    assert limiter.turn() == Turn(0)


def test_a_fast_lane_message_nobody_fetches_holds_normal_callers_back_only_so_long(client, key):
    # Given an urgent message on the broker, seen waiting longer than the patience allows
    queue = f"{key}:emails_urgent"
    limiter = RateLimiter(
        client, key=key, rate_per_second=RATE, fast_lane_queue=queue, queued_patience_ms=1_000
    )
    client.rpush(queue, "message-1")
    assert limiter.turn().yielded
    since = f"{limiter.claims_key}:queued-since"
    client.set(since, redis_ms(client) - 1_000)  # first seen a patience ago

    # Then normal callers go on
    assert limiter.turn() == Turn(0)


def test_a_long_wait_is_slept_in_slices_so_a_caller_can_give_up_during_it(client, key):
    # Given a full window and time standing still: every wait is the window's remainder
    sleep = RecordingSleep()
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)
    fill(limiter)
    told = iter([False, False, False, True])

    # When a caller told to give up on the fourth question waits
    wait_ms, _ = limiter.wait_for(lambda: (limiter.turn(), None), 2_000, give_up=lambda: next(told))

    # Then it slept three slices of at most GIVE_UP_CHECK_MS, and gives back what is still due
    assert len(sleep.seconds) == 3
    assert all(s <= GIVE_UP_CHECK_MS / 1000 for s in sleep.seconds)
    assert wait_ms > 0
