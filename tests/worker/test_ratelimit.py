"""The global send-rate limit: never more than the limit in any sliding window, across threads
and processes (real Redis, this test's own key)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.support.clocks import RecordingSleep
from tribe_worker.ratelimit import RateLimiter, window_for

#: 10 calls per 1 s window.
RATE = 10.0
LIMIT, WINDOW_MS = window_for(RATE)
#: How long the threads hammer the limiter: a few windows.
HAMMER_SECONDS = 2.2


def acquire(limiter: RateLimiter, max_wait_ms: int) -> int:
    """Wait for a slot as a worker does (without the circuit): 0 once taken, else the wait due."""
    wait_ms, _ = limiter.wait_for(lambda: (limiter.turn(), None), max_wait_ms)
    return wait_ms


@pytest.fixture
def key(redis_namespace) -> str:
    return f"{redis_namespace}:ratelimit:email"


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (50.0, (50, 1000)),
        (1.0, (1, 1000)),
        (2.5, (2, 800)),
        (0.5, (1, 2000)),
        (0.001, (1, 1_000_000)),
    ],
)
def test_window_for_a_rate_is_a_whole_number_of_calls_per_window(rate, expected):
    limit, window_ms = window_for(rate)

    assert (limit, window_ms) == expected
    assert limit / window_ms * 1000 <= rate


def busiest_window(calls: list[tuple[float, float]], limit: int) -> float:
    """The shortest time that can hold ``limit + 1`` of ``calls``.

    Each call is known only as (started, returned): it took its slot somewhere in between.
    So for ``limit + 1`` calls, the slots were at most ``max(returned) - min(started)`` apart.
    """
    calls = sorted(calls)
    shortest = float("inf")
    for i, (started, returned) in enumerate(calls):
        later = sorted(r for _, r in calls[i + 1 :])
        if len(later) < limit:
            break
        shortest = min(shortest, max(returned, later[limit - 1]) - started)
    return shortest


def hammer(limiters: list[RateLimiter], threads: int, seconds: float) -> list[tuple[float, float]]:
    """Call ``try_acquire`` from ``threads`` threads (spread over ``limiters``) for ``seconds``;
    return the successes."""
    successes: list[tuple[float, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run(limiter: RateLimiter):
        start.wait(timeout=10)
        ends = time.time() + seconds
        while (started := time.time()) < ends:
            if limiter.try_acquire() == 0:
                returned = time.time()
                with lock:
                    successes.append((started, returned))

    workers = [
        threading.Thread(target=run, args=(limiters[i % len(limiters)],)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return successes


def test_many_threads_never_take_more_than_the_limit_in_any_window(client, key):
    # Given limiters as several workers would hold them, sharing one window
    limiters = [RateLimiter(client, key=key, rate_per_second=RATE) for _ in range(2)]

    # When threads hammer them for a few windows
    successes = hammer(limiters, 8, HAMMER_SECONDS)

    # Then they used the limit over several windows, and never more than it in any window.
    # (The limiter reads Redis's clock, which no test can move: this is a measurement. The
    # window is bounded from below by when each call started and returned, so a slow machine
    # can only make it wider; 2 ms: Redis's clock counts whole milliseconds.)
    assert len(successes) > LIMIT * 2
    assert busiest_window(successes, LIMIT) >= WINDOW_MS / 1000 - 0.002


def test_try_acquire_says_how_long_until_a_slot_frees_up(client, key):
    limiter = RateLimiter(client, key=key, rate_per_second=RATE)

    assert [limiter.try_acquire() for _ in range(LIMIT)] == [0] * LIMIT
    wait_ms = limiter.try_acquire()

    assert 0 < wait_ms <= WINDOW_MS


def test_acquire_waits_with_the_injected_sleep_until_a_slot_is_free(redis_url, key):
    client = redis.Redis.from_url(redis_url)
    # The window passes while the limiter "sleeps": its calls age out of the log.
    sleep = RecordingSleep(then=lambda: client.delete(key))
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)
    for _ in range(LIMIT):
        assert limiter.try_acquire() == 0

    assert acquire(limiter, WINDOW_MS) == 0

    (slept,) = sleep.seconds
    assert 0 < slept <= WINDOW_MS / 1000
    client.close()


def test_acquire_gives_back_the_wait_still_due_when_it_would_wait_too_long(client, key):
    sleep = RecordingSleep()  # time stands still: the window never passes
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)
    for _ in range(LIMIT):
        assert acquire(limiter, 0) == 0

    still_due = acquire(limiter, WINDOW_MS * 2)

    assert 0 < still_due <= WINDOW_MS
    # It slept while the waits added up to no more than it was willing to wait, then gave up.
    assert len(sleep.seconds) >= 2
    assert all(0 < s <= WINDOW_MS / 1000 for s in sleep.seconds)
    assert sum(sleep.seconds) * 1000 <= WINDOW_MS * 2


def test_acquire_does_not_sleep_when_a_slot_is_free(client, key):
    sleep = RecordingSleep()
    limiter = RateLimiter(client, key=key, rate_per_second=RATE, sleep=sleep)

    assert [acquire(limiter, 0) for _ in range(LIMIT)] == [0] * LIMIT
    assert sleep.seconds == []
