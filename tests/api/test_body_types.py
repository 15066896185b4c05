"""Request bodies are taken as the OpenAPI document describes them, no more loosely.

Found by fuzzing (tests/api/test_fuzz.py): pydantic's lax mode took a number of seconds for a
date-time (even as text: ``"0"``), ``"5"`` for an integer and ``"yes"`` for a boolean, and
stripped a trailing line break off header text, all of which the document refuses.
"""

from __future__ import annotations

import pytest

from tests.support.family_api import create_group, create_recipient
from tests.support.http_assertions import assert_json_error, error_fields

SEND_EMAIL = "/api/notifications/send-email"


@pytest.mark.parametrize("when", [0, 1_900_000_000, 1.5, "0", "1900000000", "2030-01-01"])
def test_a_date_time_not_given_as_rfc_3339_text_is_refused(api, tokens, when):
    # Given an email whose send time is a Unix timestamp (or a date), not RFC 3339 text
    body = {"to": "a@example.com", "type": "system", "scheduled_for": when}

    # When it is sent
    response = api.simulate_post(SEND_EMAIL, json=body, headers=tokens.service)

    # Then it is refused, naming the field
    assert error_fields(assert_json_error(response, 400)) == {"scheduled_for"}


def test_a_recipient_muted_until_a_number_is_refused(api, tokens):
    response = api.simulate_post(
        "/api/recipients",
        json={"name": "Nana", "email": "nana@example.com", "muted_until": 1_900_000_000},
        headers=tokens.alice,
    )

    assert error_fields(assert_json_error(response, 400)) == {"muted_until"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_updates_per_digest", "5"),
        ("max_updates_per_digest", True),
        ("delivery_day", "3"),
        ("is_active", "yes"),
        ("is_active", 1),
    ],
)
def test_digest_numbers_and_booleans_given_as_text_are_refused(api, tokens, field, value):
    # Given a recipient of a group of Alice's
    group = create_group(api, tokens.alice)
    recipient = create_recipient(api, tokens.alice, group_ids=[group["id"]])
    body = {
        "recipient_id": recipient["id"],
        "group_id": group["id"],
        "frequency": "weekly",
        "delivery_time": "09:00",
        "delivery_day": 1,
        "timezone": "Europe/London",
        field: value,
    }

    # When a schedule is asked for with a JSON string or number where the other is documented
    response = api.simulate_post("/api/digest-schedules", json=body, headers=tokens.alice)

    # Then it is refused, naming the field
    assert error_fields(assert_json_error(response, 400)) == {field}


def test_an_integral_number_is_an_integer_as_json_schema_says(api, tokens):
    group = create_group(api, tokens.alice)
    recipient = create_recipient(api, tokens.alice, group_ids=[group["id"]])
    body = {
        "recipient_id": recipient["id"],
        "group_id": group["id"],
        "frequency": "daily",
        "delivery_time": "09:00",
        "timezone": "Europe/London",
        "max_updates_per_digest": 5.0,
    }

    response = api.simulate_post("/api/digest-schedules", json=body, headers=tokens.alice)

    assert response.status_code == 201, response.text
    assert response.json["max_updates_per_digest"] == 5


@pytest.mark.parametrize("name", ["Grandparents\n", "\r\nGrandparents", "Grand\0parents"])
def test_header_text_with_a_line_break_or_nul_anywhere_is_refused(api, tokens, name):
    response = api.simulate_post("/api/groups", json={"name": name}, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {"name"}


def test_surrounding_spaces_of_header_text_are_still_trimmed(api, tokens):
    group = create_group(api, tokens.alice, name="  Grandparents  ")

    assert group["name"] == "Grandparents"


def test_an_address_at_a_special_use_domain_is_refused(api, tokens):
    # The document's pattern says so too: a .test, .local or localhost address is never delivered
    body = {"to": "nana@family.test", "type": "system"}

    response = api.simulate_post(SEND_EMAIL, json=body, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == {"to"}


def test_template_data_keeps_its_strings_as_given(api, tokens):
    # The content of a job is not trimmed: only its NULs are refused
    body = {"to": "a@example.com", "type": "system", "templateData": {"name": "  Ada  "}}

    response = api.simulate_post(SEND_EMAIL, json=body, headers=tokens.service)

    assert response.status_code == 202, response.text
    job = api.simulate_get(f"/api/jobs/{response.json['jobId']}", headers=tokens.service).json[
        "job"
    ]
    assert "  Ada  " in str(job["content"])


@pytest.mark.parametrize("blank", [" ", "\t\u3000", "\ufeff"])
def test_a_name_of_only_whitespace_is_refused_as_the_document_says(api, tokens, blank):
    response = api.simulate_post("/api/groups", json={"name": blank}, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {"name"}


@pytest.mark.parametrize("name", ["\u0085", "\x1c"])
def test_a_name_of_a_character_json_schema_does_not_count_as_whitespace_is_kept(api, tokens, name):
    # Python's str.strip would make these blank; the document's pattern (ECMAScript \s) does not
    response = api.simulate_post("/api/groups", json={"name": name}, headers=tokens.alice)

    assert response.status_code == 201, response.text
    assert response.json["name"] == name
