"""Properties of a digest schedule's next run (``next_run_after``), daily, weekly and monthly,
in zones with awkward clocks, checked against an oracle that knows nothing of ``fold``: it finds
the instants at which a zone's clock reads a given wall time by converting UTC instants to local
time (which is never ambiguous), and treats a reading no instant has as a gap to step over.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.schedules import DAY, runs_from, utc
from tribe_shared.contract import Frequency
from tribe_shared.schedule import next_run_after

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
