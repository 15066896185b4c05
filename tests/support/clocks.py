"""Stand-ins for time: a sleep that records instead of sleeping."""

from __future__ import annotations


class RecordingSleep:
    """The limiter's sleep: records the request and returns at once (no real sleeping)."""

    def __init__(self):
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
