"""Weekly and monthly schedules: the ISO weekday in the recipient's week, and a day of the
month past a shorter month's end."""

from __future__ import annotations

from datetime import date, time
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from tests.support.schedules import DAY, runs_from, utc
from tribe_shared.schedule import next_run_after


@pytest.mark.parametrize(("delivery_day", "weekday"), [(1, "Monday"), (7, "Sunday")])
def test_a_weekly_schedule_runs_on_its_iso_weekday(delivery_day, weekday):
    runs = runs_from(
        utc(2026, 1, 1),
        8,
        frequency="weekly",
        delivery_time=time(18),
        delivery_day=delivery_day,
        timezone="Europe/London",
    )

    assert {run.astimezone(ZoneInfo("Europe/London")).strftime("%A") for run in runs} == {weekday}
    assert [b - a for a, b in pairwise(runs)] == [7 * DAY] * 7


def test_a_weekly_run_is_in_the_recipients_week_not_utcs():
    # Monday 08:00 in Sydney (AEST, +10) is Sunday 22:00 UTC
    run = next_run_after(
        utc(2026, 6, 1),  # Monday 00:00 UTC, already Monday 10:00 in Sydney
        frequency="weekly",
        delivery_time=time(8),
        delivery_day=1,
        timezone="Australia/Sydney",
    )

    assert run == utc(2026, 6, 7, 22)


def test_the_31st_falls_on_each_months_last_day_when_the_month_is_shorter():
    runs = runs_from(
        utc(2026, 3, 1),
        24,
        frequency="monthly",
        delivery_time=time(0, 0),
        delivery_day=31,
        timezone="UTC",
    )

    days = [run.date() for run in runs]
    assert date(2026, 4, 30) in days
    assert date(2027, 2, 28) in days
    assert date(2028, 2, 29) in days
    assert days[:4] == [date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31), date(2026, 6, 30)]
    assert len({(day.year, day.month) for day in days}) == 24


@pytest.mark.parametrize(
    ("year", "february_run"), [(2026, date(2026, 2, 28)), (2028, date(2028, 2, 29))]
)
def test_the_30th_runs_on_the_last_day_of_february_and_the_30th_again_in_march(year, february_run):
    runs = runs_from(
        utc(year, 1, 31),
        2,
        frequency="monthly",
        delivery_time=time(9),
        delivery_day=30,
        timezone="UTC",
    )

    assert [run.date() for run in runs] == [february_run, date(year, 3, 30)]
