"""Stand-ins for time: clocks that move only when a test says so, and a sleep that records
instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime


class RecordingSleep:
    """A sleep that records what it was asked and returns at once (no real sleeping), after
    running ``then`` (what the wait would have let happen meanwhile)."""

    def __init__(self, then: Callable[[], object] = lambda: None):
        self.seconds: list[float] = []
        self._then = then

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        self._then()


class ManualClock:
    """Seconds (monotonic or epoch, whichever the code under test reads) that move only when a
    test says so (``clock.advance(seconds)``, or set ``now``)."""

    def __init__(self, start: float = 1_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Clock:
    """A wall clock (aware datetimes) that stands still until a test moves it (sets ``now``)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now
