"""A daily schedule's next run across clock changes: the days people actually ask about, in
New York, London, Sydney and Lord Howe; a time the clock skips, one it shows twice, and a run
time that is not after itself."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.support.schedules import DAY, daily, runs_from, utc

# --- Daily across DST in New York --------------------------------------------------------


def test_nine_oclock_in_new_york_runs_once_a_day_across_spring_forward():
    # Given 09:00 daily in New York, from ten days before the 2026-03-08 change
    runs = runs_from(
        utc(2026, 2, 26, 15),
        21,
        frequency="daily",
        delivery_time=time(9),
        delivery_day=None,
        timezone="America/New_York",
    )
    # Then it runs every day, at 14:00 UTC on EST and at 13:00 UTC on EDT
    expected = [utc(2026, 2, 27, 14) + n * DAY for n in range(9)]
    expected += [utc(2026, 3, 8, 13) + n * DAY for n in range(12)]
    assert runs == expected


def test_nine_oclock_in_new_york_runs_once_a_day_across_fall_back():
    runs = runs_from(
        utc(2026, 10, 21, 14),
        21,
        frequency="daily",
        delivery_time=time(9),
        delivery_day=None,
        timezone="America/New_York",
    )
    expected = [utc(2026, 10, 22, 13) + n * DAY for n in range(10)]
    expected += [utc(2026, 11, 1, 14) + n * DAY for n in range(11)]
    assert runs == expected


# --- Gaps and repeated hours -------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "after", "expected", "local"),
    [
        # 02:00 EST → 03:00 EDT on 2026-03-08: 02:30 is 03:30 EDT
        ("America/New_York", time(2, 30), utc(2026, 3, 8), utc(2026, 3, 8, 7, 30), time(3, 30)),
        # 01:00 GMT → 02:00 BST on 2026-03-29 (last Sunday of March)
        ("Europe/London", time(1, 30), utc(2026, 3, 29), utc(2026, 3, 29, 1, 30), time(2, 30)),
        # 02:00 AEST → 03:00 AEDT on 2026-10-04 (first Sunday of October)
        ("Australia/Sydney", time(2, 30), utc(2026, 10, 3), utc(2026, 10, 3, 16, 30), time(3, 30)),
        # Lord Howe moves only 30 minutes: 02:00 → 02:30 (+10:30 → +11) on 2026-10-04
        (
            "Australia/Lord_Howe",
            time(2, 15),
            utc(2026, 10, 3),
            utc(2026, 10, 3, 15, 45),
            time(2, 45),
        ),
    ],
)
def test_a_time_the_clock_skips_runs_that_day_pushed_past_the_gap_by_its_length(
    zone, at, after, expected, local
):
    run = daily(after, at, zone)

    assert run == expected
    assert run.astimezone(ZoneInfo(zone)).time() == local


@pytest.mark.parametrize(
    ("zone", "at", "after", "first", "next_day"),
    [
        # 02:00 EDT → 01:00 EST on 2026-11-01: 01:30 EDT, not 01:30 EST an hour later
        (
            "America/New_York",
            time(1, 30),
            utc(2026, 11, 1),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 2, 6, 30),
        ),
        # 02:00 BST → 01:00 GMT on 2026-10-25 (last Sunday of October)
        (
            "Europe/London",
            time(1, 30),
            utc(2026, 10, 24, 12),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 26, 1, 30),
        ),
        # 03:00 AEDT → 02:00 AEST on 2026-04-05 (first Sunday of April)
        (
            "Australia/Sydney",
            time(2, 30),
            utc(2026, 4, 4),
            utc(2026, 4, 4, 15, 30),
            utc(2026, 4, 5, 16, 30),
        ),
        # Lord Howe: 02:00 (+11) → 01:30 (+10:30) on 2026-04-05
        (
            "Australia/Lord_Howe",
            time(1, 45),
            utc(2026, 4, 4),
            utc(2026, 4, 4, 14, 45),
            utc(2026, 4, 5, 15, 15),
        ),
    ],
)
def test_a_time_the_clock_shows_twice_runs_at_its_first_occurrence_only(
    zone, at, after, first, next_day
):
    # When the run is worked out, and then the one after it
    run = daily(after, at, zone)
    following = daily(run, at, zone)

    # Then the first occurrence runs, and the second one is not a second run that day
    assert run == first
    assert following == next_day


def test_after_a_gap_pushed_run_the_next_run_is_the_next_day():
    # Given 02:30 daily in New York; on 2026-03-08 it runs at 03:30 EDT (07:30 UTC)
    # When asked just before that, and just after it (both past the missing 02:30)
    before_it = daily(utc(2026, 3, 8, 7, 15), time(2, 30), "America/New_York")
    after_it = daily(utc(2026, 3, 8, 7, 45), time(2, 30), "America/New_York")

    # Then the first still gets that day's run and the second gets the next day's, 02:30 EDT
    assert before_it == utc(2026, 3, 8, 7, 30)
    assert after_it == utc(2026, 3, 9, 6, 30)


def test_a_run_time_is_not_after_itself():
    run = utc(2026, 6, 1, 13)  # 09:00 EDT

    assert daily(run, time(9), "America/New_York") == utc(2026, 6, 2, 13)
    assert daily(run - timedelta(microseconds=1), time(9), "America/New_York") == run
