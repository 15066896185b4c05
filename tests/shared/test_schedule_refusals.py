"""What ``next_run_after`` refuses: a naive instant, a delivery day that does not fit the
frequency, an unknown timezone, a delivery time with a zone of its own."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from tests.support.schedules import daily, utc
from tribe_shared.schedule import next_run_after


def test_a_naive_after_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        daily(datetime(2026, 1, 1), time(9), "UTC")


@pytest.mark.parametrize(
    ("frequency", "delivery_day", "message"),
    [
        ("daily", 1, "daily schedule has no delivery_day"),
        ("weekly", None, "ISO weekday"),
        ("weekly", 0, "ISO weekday"),
        ("weekly", 8, "ISO weekday"),
        ("weekly", True, "ISO weekday"),
        ("monthly", 0, "day of the month"),
        ("monthly", 32, "day of the month"),
        ("monthly", None, "day of the month"),
        ("hourly", None, "frequency must be one of daily, weekly, monthly"),
    ],
)
def test_a_delivery_day_that_does_not_fit_the_frequency_is_refused(
    frequency, delivery_day, message
):
    with pytest.raises(ValueError, match=message):
        next_run_after(
            utc(2026, 1, 1),
            frequency=frequency,
            delivery_time=time(9),
            delivery_day=delivery_day,
            timezone="UTC",
        )


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_an_unknown_timezone_is_refused(zone):
    with pytest.raises(ValueError, match="unknown timezone"):
        daily(utc(2026, 1, 1), time(9), zone)


def test_a_delivery_time_with_its_own_zone_is_refused():
    with pytest.raises(ValueError, match="naive wall-clock time"):
        daily(utc(2026, 1, 1), time(9, tzinfo=UTC), "Europe/London")
