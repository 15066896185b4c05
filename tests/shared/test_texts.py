"""What text messages say and how many SMS segments they take (``tribe_shared.texts``)."""

from __future__ import annotations

import pytest

from tribe_shared.texts import (
    MAX_SEGMENTS,
    OPT_OUT,
    Segments,
    count_segments,
    digest_text,
    fit,
    system_text,
    update_text,
)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "count"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # the extension table takes two septets a character
        ("€" * 81, "GSM-7", 162, 2),
        ("é" * 160, "GSM-7", 160, 1),  # in the basic table
        ("a" * 69 + "🎉", "UCS-2", 71, 2),  # one emoji: the whole text is UCS-2, 2 units
        ("a" * 68 + "🎉", "UCS-2", 70, 1),
        ("Maya\u2019s first steps", "UCS-2", 18, 1),  # a curly quote is not GSM-7
        ("ж" * 134, "UCS-2", 134, 2),
        ("ж" * 135, "UCS-2", 135, 3),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 8 else None,
)
def test_segments_are_counted_as_carriers_count_them(text, encoding, units, count):
    assert count_segments(text) == Segments(encoding, units, count)


def test_a_long_body_is_cut_to_fit_three_segments_keeping_the_heading_and_the_opt_out():
    body = "Maya walked across the living room today 🎉 " * 20

    text = fit("The Smiths: First steps", body, OPT_OUT)

    assert count_segments(text).count == MAX_SEGMENTS
    assert text.startswith("The Smiths: First steps\n")
    assert text.endswith("…\n" + OPT_OUT)


def test_a_short_text_is_left_whole():
    assert fit("Head", "Body", "Tail") == "Head\nBody\nTail"


def test_an_update_text_names_the_family_and_says_how_to_stop_by_sms_only():
    content = {"title": "First steps", "body": "Maya walked today!"}

    sms = update_text(content, "The Smiths", channel="sms")
    whatsapp = update_text(content, None, channel="whatsapp")

    assert sms == f"The Smiths: First steps\nMaya walked today!\n{OPT_OUT}"
    assert whatsapp == "Tribe: First steps\nMaya walked today!"


def test_a_digest_text_lists_its_updates_and_counts_the_rest():
    updates = [{"title": "First steps", "body": "Across the room"}, {"title": None, "body": "Hi"}]

    text = digest_text("Your weekly digest", "Grandparents", updates, 3, channel="sms")

    assert text.splitlines() == [
        "Your weekly digest from Grandparents",
        "• First steps: Across the room",
        "• Hi",
        "…and 3 more in the Tribe app",
        OPT_OUT,
    ]


def test_a_system_text_is_its_message():
    assert system_text({"message": "Your code is 123456"}) == "Your code is 123456"
