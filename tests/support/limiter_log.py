"""The global rate limiter's own record of the slots it gave out, read from Redis while a
scenario runs: the exact measure of "no more than the limit in any second"."""

from __future__ import annotations

import bisect
import threading
import time


class LimiterLog:
    """Every slot the global limiter gave out, read from its own log in Redis (a sorted set of
    call times, Redis ms; each entry stays at least a window): sampled every 0.1 s by a thread,
    ``with LimiterLog(client, key) as log: ...``. Exact where the fake's times carry the
    latency between taking a slot and the request arriving."""

    def __init__(self, client, key: str, interval: float = 0.1):
        self._client, self._key, self._interval = client, key, interval
        self.slots: dict[bytes, float] = {}
        #: The longest gap between two samples (s): under a window, no slot was missed.
        self.longest_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LimiterLog:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        last = time.monotonic()
        while True:
            self.slots.update(self._client.zrange(self._key, 0, -1, withscores=True))
            now = time.monotonic()
            self.longest_gap, last = max(self.longest_gap, now - last), now
            if self._stop.wait(self._interval):
                self.slots.update(self._client.zrange(self._key, 0, -1, withscores=True))
                return

    def busiest_window(self, window_ms: int = 1000) -> int:
        """The most slots given out in any window of ``window_ms`` (Redis's clock)."""
        times = sorted(self.slots.values())
        return max(
            (bisect.bisect_left(times, t + window_ms) - i for i, t in enumerate(times)), default=0
        )


def limiter_key(namespace: str) -> str:
    """The global limiter's log of call times (``tribe_worker.worker``)."""
    return f"{namespace}:ratelimit:email"
