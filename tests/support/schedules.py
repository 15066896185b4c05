"""Shorthands for the tests of a digest schedule's next run (``tribe_shared.schedule``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from tribe_shared.schedule import next_run_after

DAY = timedelta(days=1)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def daily(after: datetime, at: time, zone: str) -> datetime:
    return next_run_after(
        after, frequency="daily", delivery_time=at, delivery_day=None, timezone=zone
    )


def runs_from(after: datetime, count: int, **schedule) -> list[datetime]:
    """``count`` consecutive runs, each found by feeding the previous one back."""
    runs = []
    for _ in range(count):
        after = next_run_after(after, **schedule)
        runs.append(after)
    return runs
