"""The next run of a digest schedule: daily, weekly and monthly, in zones with awkward clocks.

The properties check ``next_run_after`` against an oracle that knows nothing of ``fold``: it finds
the instants at which a zone's clock reads a given wall time by converting UTC instants to local
time (which is never ambiguous), and treats a reading no instant has as a gap to step over.
The named cases pin the days people actually ask about.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tribe_shared.contract import Frequency
from tribe_shared.schedule import next_run_after, parse_delivery_time

ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
    "Australia/Lord_Howe",
    "UTC",
    "Asia/Tehran",
    "Europe/Dublin",
]
FIRST_YEAR, LAST_YEAR = 2000, 2040
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


# --- The oracle --------------------------------------------------------------------------


def offset_at(instant: datetime, zone: ZoneInfo) -> timedelta:
    return instant.astimezone(zone).utcoffset()


def wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def scheduled_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """When the schedule runs on local ``day``, from UTC-to-local conversions alone.

    A reading the clock shows is run at its first occurrence; a reading it skips is read with the
    offset in force before the jump, i.e. moved forward by the gap's length.
    """
    reading = datetime.combine(day, at)
    probe = reading.replace(tzinfo=UTC)
    before, later = offset_at(probe - 2 * DAY, zone), offset_at(probe + 2 * DAY, zone)
    occurrences = sorted(
        instant
        for instant in {probe - before, probe - later}
        if wall_clock(instant, zone) == reading
    )
    if occurrences:
        return occurrences[0]
    assert later > before, f"{reading} is in no gap of {zone}"
    return probe - before


def is_run_date(day: date, frequency: str, delivery_day: int | None) -> bool:
    if frequency == Frequency.DAILY:
        return True
    if frequency == Frequency.WEEKLY:
        return day.isoweekday() == delivery_day
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day == min(delivery_day, last)


def run_date_of(run: datetime, at: time, zone: ZoneInfo) -> date:
    """The local date whose delivery time ``run`` is (a gap may push it past midnight)."""
    local = run.astimezone(zone).date()
    dates = [day for day in (local, local - DAY) if scheduled_instant(day, at, zone) == run]
    assert len(dates) == 1, f"{run} is the run of no single date: {dates}"
    return dates[0]


# --- Strategies --------------------------------------------------------------------------


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """Every UTC instant in the sampled years at which the zone's offset changes."""
    zone = ZoneInfo(zone_name)
    found = []
    low = utc(FIRST_YEAR - 1, 12, 25)
    while low.year <= LAST_YEAR:
        # A week at a time (no zone here changes twice in a week), then halving to the second.
        high, next_week = low + 7 * DAY, low + 7 * DAY
        if offset_at(low, zone) != offset_at(high, zone):
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset_at(middle, zone) == offset_at(low, zone):
                    low = middle
                else:
                    high = middle
            found.append(high)
        low = next_week
    return tuple(found)


times = st.builds(
    time,
    st.integers(0, 23),
    st.integers(0, 59),
    st.sampled_from([0, 0, 0, 1, 30, 59]),
)


@st.composite
def schedules(draw) -> tuple[datetime, dict]:
    """An ``after`` instant and a schedule, often placed near one of the zone's clock changes."""
    zone_name = draw(st.sampled_from(ZONES))
    zone = ZoneInfo(zone_name)
    frequency = draw(st.sampled_from(list(Frequency)))
    delivery_day = {
        Frequency.DAILY: st.none(),
        Frequency.WEEKLY: st.integers(1, 7),
        Frequency.MONTHLY: st.one_of(st.integers(1, 31), st.integers(28, 31)),
    }[frequency]
    changes = transitions(zone_name)
    if changes and draw(st.booleans()):
        change = draw(st.sampled_from(changes))
        just_before = wall_clock(change - timedelta(seconds=1), zone) + timedelta(seconds=1)
        delivery_time = (just_before + timedelta(minutes=draw(st.integers(-90, 90)))).time()
        after = change + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
    else:
        delivery_time = draw(times)
        after = draw(st.datetimes(datetime(FIRST_YEAR, 1, 1), datetime(LAST_YEAR, 12, 31))).replace(
            tzinfo=UTC
        )
    after = after.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))
    schedule = {
        "frequency": draw(st.sampled_from([frequency, frequency.value])),
        "delivery_time": delivery_time,
        "delivery_day": draw(delivery_day),
        "timezone": draw(st.sampled_from([zone, zone_name])),
    }
    return after, schedule


def zone_of(schedule: dict) -> ZoneInfo:
    timezone = schedule["timezone"]
    return timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- Properties --------------------------------------------------------------------------


@PROPERTY
@given(schedules())
def test_the_next_run_is_the_first_scheduled_instant_strictly_after(case):
    # Given a schedule and an instant
    after, schedule = case
    zone, at = zone_of(schedule), schedule["delivery_time"]
    frequency, delivery_day = schedule["frequency"], schedule["delivery_day"]

    # When its next run is worked out
    run = next_run_after(after, **schedule)

    # Then it is a UTC instant after ``after`` ...
    assert run.tzinfo is UTC
    assert run > after
    # ... on a date the schedule runs on, at the delivery time or pushed past a gap by its length
    day = run_date_of(run, at, zone)
    assert is_run_date(day, frequency, delivery_day)
    reading = datetime.combine(day, at)
    if wall_clock(run, zone) != reading:
        gap = offset_at(run, zone) - offset_at(run - 2 * DAY, zone)
        assert gap > timedelta(0)
        assert wall_clock(run, zone) == reading + gap
    # ... and no run date in between has its time strictly between ``after`` and this run
    for step in range(-2, (day - after.astimezone(zone).date()).days + 3):
        other = after.astimezone(zone).date() + step * DAY
        if other != day and is_run_date(other, frequency, delivery_day):
            between = after < scheduled_instant(other, at, zone) < run
            assert not between, f"{other} runs between {after} and {run}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_feeding_each_run_back_gives_one_run_per_period_in_order(case):
    # Given a schedule and an instant
    after, schedule = case
    zone, at = zone_of(schedule), schedule["delivery_time"]

    # When six runs are worked out one after the other
    runs = runs_from(after, 6, **schedule)

    # Then they increase and fall on consecutive periods: none twice, none skipped
    assert runs == sorted(set(runs))
    dates = [run_date_of(run, at, zone) for run in runs]
    period = {
        Frequency.DAILY: lambda day: day.toordinal(),
        Frequency.WEEKLY: lambda day: day.toordinal() // 7,
        Frequency.MONTHLY: lambda day: day.year * 12 + day.month,
    }[Frequency(schedule["frequency"])]
    assert [period(d) - period(dates[0]) for d in dates] == list(range(6))
    # ... and each run's local calendar date is its own
    assert [run.astimezone(zone).date() for run in runs] == dates


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


# --- Weekly and monthly ------------------------------------------------------------------


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


# --- Refusals ----------------------------------------------------------------------------


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


# --- Parsing a delivery time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", time(9)),
        ("00:00", time(0)),
        ("23:59:59", time(23, 59, 59)),
        ("07:05:30", time(7, 5, 30)),
    ],
)
def test_a_delivery_time_is_read_from_hh_mm_or_hh_mm_ss(text, expected):
    assert parse_delivery_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "9:00",
        "09:0",
        "0900",
        "09:00:0",
        "09:00:00.5",
        "09:00+02:00",
        "T09:00",
        " 09:00",
        "09:00\n",
        "",
        "\u0660\u0669:\u0660\u0660",
    ],
)
def test_a_delivery_time_in_any_other_shape_is_refused(text):
    with pytest.raises(ValueError, match="HH:MM or HH:MM:SS"):
        parse_delivery_time(text)


@pytest.mark.parametrize("text", ["24:00", "12:60", "12:00:60", "99:99"])
def test_a_delivery_time_outside_the_day_is_refused(text):
    with pytest.raises(ValueError, match="between 00:00 and 23:59:59"):
        parse_delivery_time(text)
