"""Values at the edge of what the API takes (issue #15, items 5 and 9): instants past what the
databases hold, schedules too far ahead, names that are files of the zone database but no
timezone, and the original system's content type names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.email_api import SEND, email, job_rows
from tests.support.family import family
from tests.support.family_api import NOTIFICATIONS, RECIPIENTS, iso, recipient_path
from tests.support.http_assertions import assert_json_error
from tribe_shared.models import DigestSchedule, Recipient, utcnow

SCHEDULES = "/api/digest-schedules"
#: Past year 9999 once in UTC: the databases cannot hold it.
OVERFLOWING = "9999-12-31T23:59:59-01:00"


@pytest.fixture
def fam(db_url, tokens):
    return family(tokens.alice_id, email="nana@example.com")


def field_errors(response) -> dict[str, str]:
    return {error["field"]: error["kind"] for error in response.json["errors"]}


def schedule(fam, **fields) -> dict:
    return {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "frequency": "daily",
        "delivery_time": "09:00",
        "timezone": "Europe/London",
        **fields,
    }


# --- item 5: instants ----------------------------------------------------------------------


def test_an_email_scheduled_past_year_9999_in_utc_is_a_400(api, tokens, fam):
    response = api.simulate_post(SEND, json=email(scheduled_for=OVERFLOWING), headers=tokens.alice)

    assert_json_error(response, 400)
    assert field_errors(response) == {"scheduled_for": "out_of_range"}
    assert job_rows() == []


def test_a_recipient_muted_past_year_9999_in_utc_is_a_400(api, tokens, fam):
    response = api.simulate_patch(
        recipient_path(fam.recipient.id), json={"muted_until": OVERFLOWING}, headers=tokens.alice
    )

    assert_json_error(response, 400)
    assert field_errors(response) == {"muted_until": "out_of_range"}
    assert Recipient.get_by_id(fam.recipient.id).muted_until is None


def test_a_new_recipient_muted_past_year_9999_is_a_400_and_not_created(api, tokens, db_url):
    body = {"name": "Nana", "email": "nana@example.com", "muted_until": OVERFLOWING}

    response = api.simulate_post(RECIPIENTS, json=body, headers=tokens.alice)

    assert_json_error(response, 400)
    assert Recipient.select().count() == 0


def test_an_email_a_year_and_more_ahead_is_a_422_naming_scheduled_for(api, tokens, fam):
    far = iso(utcnow() + timedelta(days=367))

    response = api.simulate_post(SEND, json=email(scheduled_for=far), headers=tokens.alice)

    assert_json_error(response, 422)
    assert field_errors(response) == {"scheduled_for": "out_of_range"}
    assert job_rows() == []


def test_a_notification_a_year_and_more_ahead_is_a_422(api, tokens, fam):
    body = {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "content": {"title": "First steps", "body": "Maya walked!"},
        "scheduled_for": iso(utcnow() + timedelta(days=400)),
    }

    response = api.simulate_post(NOTIFICATIONS, json=body, headers=tokens.alice)

    assert_json_error(response, 422)
    assert field_errors(response) == {"scheduled_for": "out_of_range"}


def test_an_email_within_the_year_is_accepted(api, tokens, fam):
    near = iso(utcnow() + timedelta(days=365))

    response = api.simulate_post(SEND, json=email(scheduled_for=near), headers=tokens.alice)

    assert response.status_code == 202, response.text


# --- item 5: timezones -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Factory", "posix/Europe/London"])
def test_a_zone_file_that_is_no_timezone_is_refused(api, tokens, fam, name):
    response = api.simulate_post(SCHEDULES, json=schedule(fam, timezone=name), headers=tokens.alice)

    assert_json_error(response, 400)
    assert set(field_errors(response)) == {"timezone"}
    assert DigestSchedule.select().count() == 0


def test_the_timezones_the_document_offers_leave_those_names_out(api):
    document = api.simulate_get("/api/openapi.json").json
    text = str(document)

    assert "Europe/London" in text
    for name in ("'localtime'", "'posixrules'", "'Factory'", "'posix/", "'right/"):
        assert name not in text


# --- item 9: the original system's content type names ---------------------------------------


def test_the_original_systems_content_type_names_are_taken_as_aliases(api, tokens, fam):
    body = schedule(fam, include_content_types=["photos", "milestones", "text"])

    response = api.simulate_post(SCHEDULES, json=body, headers=tokens.alice)

    assert response.status_code == 201, response.text
    assert response.json["include_content_types"] == ["photo", "milestone", "text"]


def test_a_name_and_its_alias_count_as_one(api, tokens, fam):
    body = schedule(fam, include_content_types=["video", "videos"])

    response = api.simulate_post(SCHEDULES, json=body, headers=tokens.alice)

    assert response.status_code == 201, response.text
    assert response.json["include_content_types"] == ["video"]


def test_an_unknown_content_type_is_still_refused(api, tokens, fam):
    body = schedule(fam, include_content_types=["selfies"])

    response = api.simulate_post(SCHEDULES, json=body, headers=tokens.alice)

    assert_json_error(response, 400)
    assert set(field_errors(response)) == {"include_content_types[0]"}
