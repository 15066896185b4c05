"""Reading a schedule's delivery time (``parse_delivery_time``): ``HH:MM`` or ``HH:MM:SS``
within the day, nothing else."""

from __future__ import annotations

from datetime import time

import pytest

from tribe_shared.schedule import parse_delivery_time


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
