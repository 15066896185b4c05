"""``/api/groups``: a group is created empty, listed with its number of recipients, and refused
with a 400 naming a bad field."""

from __future__ import annotations

import pytest

from tests.support.family import user
from tests.support.family_api import (
    GROUPS,
    create_group,
    create_recipient,
    every_row,
    group_counts,
)
from tests.support.http_assertions import assert_json_error, error_fields


def test_a_new_group_starts_empty_and_is_listed(api, tokens):
    response = api.simulate_post(GROUPS, json={"name": "Grandparents"}, headers=tokens.alice)

    assert response.status_code == 201, response.text
    group = response.json
    assert group["name"] == "Grandparents"
    assert group["recipient_count"] == 0
    assert response.headers["location"] == f"{GROUPS}/{group['id']}"
    assert group_counts(api, tokens.alice) == {group["id"]: 0}


def test_the_location_of_a_new_group_answers_with_it_for_its_owner_only(api, tokens):
    # Given a group Alice created
    created = api.simulate_post(GROUPS, json={"name": "Grandparents"}, headers=tokens.alice)
    create_recipient(api, tokens.alice, name="Nana", group_ids=[created.json["id"]])

    # When its Location is fetched, by Alice and by Bob
    mine = api.simulate_get(created.headers["location"], headers=tokens.alice)
    theirs = api.simulate_get(created.headers["location"], headers=tokens.bob)

    # Then Alice gets it, with its member, and Bob the 404 of any missing object
    assert mine.status_code == 200, mine.text
    assert mine.json == {**created.json, "recipient_count": 1}
    assert theirs.status_code == 404 and theirs.json["code"] == "not_found"


def test_a_groups_recipient_count_counts_its_members(api, tokens):
    grandparents = create_group(api, tokens.alice, "Grandparents")["id"]
    friends = create_group(api, tokens.alice, "Friends")["id"]
    create_recipient(api, tokens.alice, name="Nana", group_ids=[grandparents])
    create_recipient(api, tokens.alice, name="Papa", group_ids=[grandparents, friends])

    assert group_counts(api, tokens.alice) == {grandparents: 2, friends: 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Grand\r\nBcc: spy@example.com"}, "name"),
        ({"name": "Friends", "colour": "red"}, "colour"),
    ],
    ids=["no name", "empty name", "name too long", "line break in name", "unknown field"],
)
def test_a_group_is_refused_with_a_400_naming_the_bad_field(api, tokens, body, field):
    user(tokens.alice_id)
    before = every_row()

    response = api.simulate_post(GROUPS, json=body, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {field}
    assert every_row() == before
