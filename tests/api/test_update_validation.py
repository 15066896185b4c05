"""``POST /api/updates`` refuses a bad update with a 400 (or a 404 for a group that does not
exist) and writes nothing; what an accepted update does is in test_update_fanout.py."""

from __future__ import annotations

import uuid

import pytest

from tests.support.family import family
from tests.support.family_api import (
    UPDATES,
    every_row,
)
from tests.support.http_assertions import assert_json_error, error_fields


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"group_id": None}, "group_id"),
        ({"group_id": "grandparents"}, "group_id"),
        ({"content_type": "poem"}, "content_type"),
        ({"title": "First\r\nBcc: spy@example.com"}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"child_name": "Maya\nBcc: spy@example.com"}, "child_name"),
        ({"media_urls": ["not a url"]}, "media_urls[0]"),
        ({"media_urls": ["javascript:alert(1)"]}, "media_urls[0]"),
        ({"media_urls": "https://example.com/a.jpg"}, "media_urls"),
        ({"mood": "happy"}, "mood"),
    ],
    ids=[
        "no group",
        "malformed group id",
        "unknown content type",
        "header in title",
        "title too long",
        "header in child name",
        "a media url that is not a url",
        "a javascript: media url",
        "media_urls not a list",
        "unknown field",
    ],
)
def test_an_update_is_refused_with_a_400_naming_the_bad_field_and_nothing_is_written(
    api, tokens, changes, field
):
    household = family(tokens.alice_id)
    body = {"group_id": str(household.group.id), "content_type": "text", "title": "Hi", **changes}
    body = {key: value for key, value in body.items() if value is not None}
    before = every_row()

    response = api.simulate_post(UPDATES, json=body, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {field}
    assert every_row() == before


def test_an_update_to_a_group_that_does_not_exist_is_a_404_and_nothing_is_written(api, tokens):
    family(tokens.alice_id)
    before = every_row()
    missing = str(uuid.uuid4())

    response = api.simulate_post(
        UPDATES, json={"group_id": missing, "content_type": "text"}, headers=tokens.alice
    )

    assert missing in assert_json_error(response, 404)["description"]
    assert every_row() == before
