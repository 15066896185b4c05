"""Stand-ins for time: a sleep that records instead of sleeping."""

from __future__ import annotations


class RecordingSleep:
    """The limiter's sleep: records the request and returns at once (no real sleeping)."""

    def __init__(self):
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


class ManualClock:
    """A monotonic clock that moves only when a test says so (``clock.advance(seconds)``)."""

    def __init__(self, start: float = 1_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
