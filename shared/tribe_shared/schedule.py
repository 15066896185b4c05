"""When a digest schedule runs next: the first local delivery time after a given instant.

A schedule speaks in the recipient's wall clock ("09:00 every Sunday in Sydney"); the database and
the scheduler speak in UTC instants. :func:`next_run_after` is the one place that translates, so
the scheduler, the API and the tests all agree on what "next" means, including on the days when
the wall clock jumps.

The work is done in local calendar dates: pick the next date the frequency allows, put the
delivery time on it, resolve that wall-clock reading to an instant, and move on to the next date
if the instant is not strictly after ``after``. Only the resolving step knows about DST:

* a reading the clock skips that day (spring forward, 02:30 when 02:00 jumps to 03:00) is read
  with the offset in force before the jump, which lands it as far past the jump as the gap is
  long: 02:30 becomes 03:30 (where the gap is 30 minutes, as on Lord Howe Island, 02:15 becomes
  02:45);
* a reading the clock shows twice (fall back, 01:30 when 02:00 returns to 01:00) is its first
  occurrence, the one before the clocks go back.

Both are what ``fold=0`` means in :pep:`495`, which is what :mod:`zoneinfo` does with it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tribe_shared.contract import Frequency

#: A delivery time as the API documents it: ``HH:MM`` or ``HH:MM:SS``, 24-hour, local to the
#: schedule's timezone; :func:`parse_delivery_time` accepts exactly these.
DELIVERY_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
#: How a delivery time is stored.
STORED_DELIVERY_TIME = "%H:%M:%S"
_DELIVERY_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
#: The delivery_day of each frequency but daily (which has none): lowest, highest, meaning.
DELIVERY_DAYS = {
    Frequency.WEEKLY: (1, 7, "an ISO weekday, 1 = Monday to 7 = Sunday"),
    Frequency.MONTHLY: (1, 31, "a day of the month, 1 to 31"),
}


def next_run_after(
    after: datetime,
    *,
    frequency: str,
    delivery_time: time,
    delivery_day: int | None,
    timezone: ZoneInfo | str,
) -> datetime:
    """The first run of a schedule strictly after the instant ``after``, in UTC.

    ``after`` must be timezone-aware: a naive datetime names no instant, and guessing its zone is
    how digests end up an hour late. ``delivery_time`` is a naive wall-clock time in ``timezone``.
    ``delivery_day`` is None for daily schedules, an ISO weekday (1 = Monday, 7 = Sunday) for
    weekly ones, and a day of the month (1-31) for monthly ones, where a day the month lacks
    means its last day (31 → 30 April, 28 or 29 February).

    Strictly after: feeding a result back as ``after`` gives the following period's run, never
    the same one again and never one period too far, so the scheduler can call this with the run
    it just made. A bad combination raises :class:`ValueError` that says what is wrong.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"after must be timezone-aware, got the naive datetime {after!r}")
    if delivery_time.tzinfo is not None:
        raise ValueError("delivery_time must be a naive wall-clock time; the zone is timezone")
    period = _frequency(frequency)
    _check_delivery_day(period, delivery_day)
    zone = _zone(timezone)

    # A day earlier than the local date of ``after``: a wall-clock reading pushed past a gap
    # may land on a later instant than its own date suggests.
    start = after.astimezone(zone).date() - timedelta(days=1)
    for day in _run_dates(period, delivery_day, start):
        run = _resolve(day, delivery_time, zone)
        if run > after:
            return run
    raise AssertionError("unreachable: run dates never end")  # pragma: no cover


def parse_delivery_time(text: str) -> time:
    """A schedule's delivery time from "HH:MM" or "HH:MM:SS" (24-hour, two digits each).

    Strict on purpose: the value is stored as text and read back by the scheduler, so "9:00",
    "09:00:00.5", "09:00+02:00" and "24:00" are refused here rather than misread later.
    """
    match = _DELIVERY_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"delivery_time must be HH:MM or HH:MM:SS (24-hour), got {text!r}")
    hour, minute, second = match.group(1), match.group(2), match.group(3) or "0"
    try:
        return time(int(hour), int(minute), int(second))
    except ValueError:
        raise ValueError(
            f"delivery_time must be a time of day between 00:00 and 23:59:59, got {text!r}"
        ) from None


def stored_delivery_time(text: str) -> str:
    """``HH:MM`` or ``HH:MM:SS`` as stored: ``HH:MM:SS``."""
    return parse_delivery_time(text).strftime(STORED_DELIVERY_TIME)


def delivery_day_problem(frequency: str, delivery_day: int | None) -> str | None:
    """What is wrong with ``delivery_day`` for a schedule of ``frequency``, or None."""
    period = Frequency(frequency)
    if period is Frequency.DAILY:
        if delivery_day is not None:
            return f"a daily schedule has no delivery_day, got {delivery_day!r}"
        return None
    low, high, meaning = DELIVERY_DAYS[period]
    valid = isinstance(delivery_day, int) and not isinstance(delivery_day, bool)
    if not valid or not low <= delivery_day <= high:
        return f"a {period} schedule needs delivery_day as {meaning}, got {delivery_day!r}"
    return None


def _frequency(frequency: str) -> Frequency:
    try:
        return Frequency(frequency)
    except ValueError:
        allowed = ", ".join(f.value for f in Frequency)
        raise ValueError(f"frequency must be one of {allowed}, got {frequency!r}") from None


def _check_delivery_day(frequency: Frequency, delivery_day: int | None) -> None:
    problem = delivery_day_problem(frequency, delivery_day)
    if problem is not None:
        raise ValueError(problem)


def _zone(timezone: ZoneInfo | str) -> ZoneInfo:
    if isinstance(timezone, ZoneInfo):
        return timezone
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown timezone {timezone!r}") from None


def _run_dates(frequency: Frequency, delivery_day: int | None, start: date) -> Iterator[date]:
    """The local dates the schedule runs on, from ``start`` on, in order."""
    if frequency is Frequency.DAILY:
        day = start
        while True:
            yield day
            day += timedelta(days=1)
    elif frequency is Frequency.WEEKLY:
        day = start + timedelta(days=(delivery_day - start.isoweekday()) % 7)
        while True:
            yield day
            day += timedelta(days=7)
    else:
        year, month = start.year, start.month
        while True:
            last = calendar.monthrange(year, month)[1]
            day = date(year, month, min(delivery_day, last))
            if day >= start:
                yield day
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _resolve(day: date, delivery_time: time, zone: ZoneInfo) -> datetime:
    """The UTC instant the wall clock in ``zone`` reads ``delivery_time`` on ``day``.

    ``fold=0`` decides both DST edges (see the module docstring): a skipped reading moves forward
    by the gap's length, a repeated one is its first occurrence. A ``fold=1`` on the caller's
    time is dropped so that it cannot pick the second occurrence.
    """
    local = datetime.combine(day, delivery_time.replace(fold=0), tzinfo=zone)
    return local.astimezone(UTC)
