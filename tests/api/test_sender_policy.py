"""Who may send ad-hoc email (issue #15, item 4): the service role to anyone; a user only to
their own recipients, at most ``USER_EMAILS_PER_DAY`` a day. Refusals write no job."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing

from tests.support.clocks import Clock
from tests.support.email_api import BULK, SEND, email, job_rows
from tests.support.family import family
from tests.support.http_assertions import assert_json_error
from tribe_api.app import create_app

NANA = "nana@example.com"
STRANGER = "someone@elsewhere.example"


@pytest.fixture(autouse=True)
def nana_is_alices(db_url, tokens):
    return family(tokens.alice_id, email=NANA)


def field_errors(response) -> dict[str, str]:
    return {error["field"]: error["kind"] for error in response.json["errors"]}


def test_a_user_may_email_their_own_recipient_whatever_the_case_of_the_address(api, tokens):
    response = api.simulate_post(SEND, json=email(to="Nana@Example.com"), headers=tokens.alice)

    assert response.status_code == 202, response.text


def test_a_user_may_not_email_an_address_none_of_their_recipients_has(api, tokens):
    response = api.simulate_post(SEND, json=email(to=STRANGER), headers=tokens.alice)

    body = assert_json_error(response, 422)
    assert body["code"] == "validation_failed"
    assert field_errors(response) == {"to": "conflict"}
    assert job_rows() == []


def test_another_users_recipient_is_a_stranger_too(api, tokens):
    response = api.simulate_post(SEND, json=email(to=NANA), headers=tokens.bob)

    assert_json_error(response, 422)
    assert job_rows() == []


def test_a_bulk_request_names_each_stranger_and_writes_nothing(api, tokens):
    emails = [email(to=NANA), email(to=STRANGER), email(to=NANA), email(to="x@y.example")]

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.alice)

    assert_json_error(response, 422)
    assert field_errors(response) == {"emails[1].to": "conflict", "emails[3].to": "conflict"}
    assert job_rows() == []


@pytest.mark.parametrize("as_key", [False, True], ids=["service token", "service_role key"])
def test_the_service_role_emails_anyone(api, tokens, as_key):
    headers = tokens.service_key if as_key else tokens.service

    response = api.simulate_post(SEND, json=email(to=STRANGER), headers=headers)

    assert response.status_code == 202, response.text


# --- the daily quota --------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2027, 1, 15, 23, 0, tzinfo=UTC))


@pytest.fixture
def quota_api(redis_settings, redis_client, redis_worker, clock):
    """The API on the real Redis, allowing a user three ad-hoc emails a day."""
    settings = replace(redis_settings, user_emails_per_day=3)
    return testing.TestClient(
        create_app(settings, broker=redis_worker.broker, redis_client=redis_client, clock=clock)
    )


def test_past_the_daily_quota_a_user_gets_429_quota_exceeded_and_no_job(quota_api, tokens):
    bulk = {"emails": [email(to=NANA), email(to=NANA)]}
    assert quota_api.simulate_post(BULK, json=bulk, headers=tokens.alice).status_code == 202
    assert quota_api.simulate_post(SEND, json=email(), headers=tokens.alice).status_code == 202

    refused = quota_api.simulate_post(SEND, json=email(), headers=tokens.alice)

    body = assert_json_error(refused, 429)
    assert body["code"] == "quota_exceeded"
    assert int(refused.headers["retry-after"]) == 3600  # at 23:00 UTC: until midnight
    assert len(job_rows()) == 3


def test_the_quota_starts_again_at_midnight_utc(quota_api, tokens, clock):
    bulk = {"emails": [email(to=NANA)] * 3}
    assert quota_api.simulate_post(BULK, json=bulk, headers=tokens.alice).status_code == 202
    assert quota_api.simulate_post(SEND, json=email(), headers=tokens.alice).status_code == 429

    clock.now += timedelta(hours=1)

    assert quota_api.simulate_post(BULK, json=bulk, headers=tokens.alice).status_code == 202


def test_a_bulk_request_larger_than_what_is_left_is_refused_whole(quota_api, tokens):
    assert quota_api.simulate_post(SEND, json=email(), headers=tokens.alice).status_code == 202
    three = {"emails": [email(to=NANA)] * 3}

    refused = quota_api.simulate_post(BULK, json=three, headers=tokens.alice)

    assert assert_json_error(refused, 429)["code"] == "quota_exceeded"
    assert len(job_rows()) == 1
    # What was left is still there.
    two = {"emails": [email(to=NANA)] * 2}
    assert quota_api.simulate_post(BULK, json=two, headers=tokens.alice).status_code == 202


def test_each_user_has_a_quota_of_their_own_and_the_service_role_none(quota_api, tokens):
    family(tokens.bob_id, email="grandpa@example.com")
    bulk = {"emails": [email(to=NANA)] * 3}
    assert quota_api.simulate_post(BULK, json=bulk, headers=tokens.alice).status_code == 202

    bobs = quota_api.simulate_post(SEND, json=email(to="grandpa@example.com"), headers=tokens.bob)
    service = quota_api.simulate_post(BULK, json={"emails": [email()] * 5}, headers=tokens.service)

    assert bobs.status_code == 202, bobs.text
    assert service.status_code == 202, service.text


def test_a_refused_address_does_not_spend_the_quota(quota_api, tokens):
    for _ in range(3):
        refused = quota_api.simulate_post(SEND, json=email(to=STRANGER), headers=tokens.alice)
        assert refused.status_code == 422

    bulk = {"emails": [email(to=NANA)] * 3}
    assert quota_api.simulate_post(BULK, json=bulk, headers=tokens.alice).status_code == 202
