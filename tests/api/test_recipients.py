"""``/api/recipients``: create, read, list, change and delete recipients, every input validated;
deleting one cancels their jobs not yet started."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.family import family, notification_job, user
from tests.support.family_api import (
    RECIPIENTS,
    create_group,
    create_recipient,
    every_row,
    group_counts,
    iso,
    recipient_path,
)
from tests.support.http_assertions import assert_json_error, error_fields
from tests.support.jobs import reload
from tribe_shared.contract import JobStatus
from tribe_shared.models import GroupMembership, Recipient, utcnow

NEXT_WEEK = iso(utcnow() + timedelta(days=7))


def recipients_listed(api, headers, query: str = "") -> list[dict]:
    response = api.simulate_get(RECIPIENTS, query_string=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json["recipients"]


def read_recipient(api, headers, recipient_id) -> dict:
    response = api.simulate_get(recipient_path(recipient_id), headers=headers)
    assert response.status_code == 200, response.text
    return response.json


# --- create, read, list --------------------------------------------------------------------


def test_a_new_recipient_is_stored_with_its_groups_and_read_back_as_created(api, tokens):
    group = create_group(api, tokens.alice)["id"]
    body = {
        "name": "Nana",
        "email": "nana@example.com",
        "phone": "+14155550100",
        "relationship": "grandmother",
        "group_ids": [group],
        "muted_until": NEXT_WEEK,
    }

    response = api.simulate_post(RECIPIENTS, json=body, headers=tokens.alice)

    assert response.status_code == 201, response.text
    created = response.json
    assert {key: created[key] for key in body} == body
    assert response.headers["location"] == recipient_path(created["id"])
    assert read_recipient(api, tokens.alice, created["id"]) == created
    assert recipients_listed(api, tokens.alice) == [created]


def test_recipients_can_be_listed_by_group(api, tokens):
    grandparents = create_group(api, tokens.alice, "Grandparents")["id"]
    friends = create_group(api, tokens.alice, "Friends")["id"]
    nana = create_recipient(api, tokens.alice, name="Nana", group_ids=[grandparents])
    create_recipient(api, tokens.alice, name="Joe", group_ids=[friends])
    create_recipient(api, tokens.alice, name="Nobody's")

    listed = recipients_listed(api, tokens.alice, f"group_id={grandparents}")

    assert [r["id"] for r in listed] == [nana["id"]]


@pytest.mark.parametrize("query", ["group_id=grandparents", "colour=blue"])
def test_listing_recipients_with_a_bad_parameter_is_a_400(api, tokens, query):
    response = api.simulate_get(RECIPIENTS, query_string=query, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == {query.split("=")[0]}


#: Leaves a field out of :func:`bad`.
DROP = object()


def bad(**changes) -> dict:
    """A body for Nana with an email address, with ``changes`` that make it bad."""
    body = {"name": "Nana", "email": "nana@example.com", **changes}
    return {key: value for key, value in body.items() if value is not DROP}


HEADER = "\r\nBcc: spy@example.com"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param(bad(email=DROP), {"email", "phone"}, id="neither email nor phone"),
        pytest.param(bad(email=None, phone=None), {"email", "phone"}, id="null email and phone"),
        pytest.param(bad(email="not-an-email"), {"email"}, id="invalid email"),
        pytest.param(bad(email="nana@example.com" + HEADER), {"email"}, id="header in email"),
        pytest.param(bad(phone="12345"), {"phone"}, id="phone too short"),
        pytest.param(bad(phone="+0123456789"), {"phone"}, id="phone with a leading zero"),
        pytest.param(bad(phone="555-0100"), {"phone"}, id="local phone"),
        pytest.param(bad(name="Nana" + HEADER), {"name"}, id="header in name"),
        pytest.param(
            bad(relationship="grand\nmother"), {"relationship"}, id="break in relationship"
        ),
        pytest.param(bad(name=""), {"name"}, id="empty name"),
        pytest.param(bad(name=DROP), {"name"}, id="no name"),
        pytest.param(bad(nickname="Nan"), {"nickname"}, id="unknown field"),
        pytest.param(bad(group_ids=["grandparents"]), {"group_ids[0]"}, id="malformed group id"),
        pytest.param(bad(muted_until="next week"), {"muted_until"}, id="muted_until not a time"),
        pytest.param(
            bad(muted_until="2030-01-01T00:00:00"), {"muted_until"}, id="muted_until naive"
        ),
    ],
)
def test_a_recipient_is_refused_with_a_400_naming_the_bad_fields(api, tokens, body, fields):
    user(tokens.alice_id)
    before = every_row()

    response = api.simulate_post(RECIPIENTS, json=body, headers=tokens.alice)

    assert error_fields(assert_json_error(response, 400)) == fields
    assert every_row() == before


def test_a_recipient_for_a_group_that_does_not_exist_is_a_404_and_is_not_stored(api, tokens):
    user(tokens.alice_id)
    missing = str(uuid.uuid4())

    response = api.simulate_post(
        RECIPIENTS,
        json={"name": "Nana", "phone": "+14155550100", "group_ids": [missing]},
        headers=tokens.alice,
    )

    assert missing in assert_json_error(response, 404)["description"]
    assert Recipient.select().count() == 0


@pytest.mark.parametrize("recipient_id", [str(uuid.uuid4()), "not-a-uuid"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_unknown_or_malformed_recipient_id_is_a_404(api, tokens, method, recipient_id):
    response = api.simulate_request(
        method, recipient_path(recipient_id), json={"name": "Nana"}, headers=tokens.alice
    )

    assert_json_error(response, 404)


# --- change --------------------------------------------------------------------------------


def patch(api, headers, recipient_id, changes):
    return api.simulate_patch(recipient_path(recipient_id), json=changes, headers=headers)


def test_a_patch_changes_only_the_fields_it_gives(api, tokens):
    group = create_group(api, tokens.alice)["id"]
    nana = create_recipient(api, tokens.alice, phone="+14155550100", group_ids=[group])

    response = patch(api, tokens.alice, nana["id"], {"name": "Granny", "relationship": "gran"})

    assert response.status_code == 200, response.text
    assert response.json == {**nana, "name": "Granny", "relationship": "gran"}
    assert read_recipient(api, tokens.alice, nana["id"]) == response.json


def test_a_patch_with_an_unknown_field_is_a_400_and_changes_nothing(api, tokens):
    nana = create_recipient(api, tokens.alice)

    response = patch(api, tokens.alice, nana["id"], {"name": "Granny", "nickname": "Nan"})

    assert error_fields(assert_json_error(response, 400)) == {"nickname"}
    assert read_recipient(api, tokens.alice, nana["id"]) == nana


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12345"}, "phone"),
        ({"name": "Nana\r\nBcc: spy@example.com"}, "name"),
        ({"group_ids": "all"}, "group_ids"),
        ({"muted_until": "soon"}, "muted_until"),
    ],
    ids=["invalid email", "invalid phone", "header in name", "group_ids not a list", "bad time"],
)
def test_a_patch_with_a_bad_value_is_a_400_naming_it_and_changes_nothing(
    api, tokens, changes, field
):
    nana = create_recipient(api, tokens.alice)

    response = patch(api, tokens.alice, nana["id"], changes)

    assert error_fields(assert_json_error(response, 400)) == {field}
    assert read_recipient(api, tokens.alice, nana["id"]) == nana


@pytest.mark.parametrize(
    ("created", "changes", "fields"),
    [
        ({"email": "nana@example.com"}, {"email": None}, {"email", "phone"}),
        ({"email": None, "phone": "+14155550100"}, {"phone": None}, {"email", "phone"}),
        ({"phone": "+14155550100"}, {"email": None, "phone": None}, {"email", "phone"}),
        ({}, {"name": None}, {"name"}),
    ],
    ids=["removing the only email", "removing the only phone", "removing both", "removing name"],
)
def test_a_patch_that_would_leave_a_recipient_unreachable_or_nameless_is_a_422(
    api, tokens, created, changes, fields
):
    nana = create_recipient(api, tokens.alice, **created)

    response = patch(api, tokens.alice, nana["id"], changes)

    assert error_fields(assert_json_error(response, 422)) == fields
    assert read_recipient(api, tokens.alice, nana["id"]) == nana


def test_a_patch_may_remove_the_email_while_a_phone_remains(api, tokens):
    nana = create_recipient(api, tokens.alice, phone="+14155550100")

    response = patch(api, tokens.alice, nana["id"], {"email": None})

    assert response.status_code == 200, response.text
    assert (response.json["email"], response.json["phone"]) == (None, "+14155550100")


def test_muted_until_mutes_and_null_unmutes(api, tokens):
    nana = create_recipient(api, tokens.alice)

    muted = patch(api, tokens.alice, nana["id"], {"muted_until": NEXT_WEEK})
    unmuted = patch(api, tokens.alice, nana["id"], {"muted_until": None})

    assert muted.json["muted_until"] == NEXT_WEEK
    assert unmuted.status_code == 200, unmuted.text
    assert unmuted.json["muted_until"] is None
    assert Recipient.get_by_id(uuid.UUID(nana["id"])).muted_until is None


@pytest.mark.parametrize(
    ("before", "after"),
    [(["a", "b"], ["b", "c"]), (["a"], []), ([], ["a", "c"])],
    ids=["to other groups", "to none", "from none"],
)
def test_patching_group_ids_replaces_the_memberships(api, tokens, before, after):
    groups = {name: create_group(api, tokens.alice, name)["id"] for name in "abc"}
    nana = create_recipient(api, tokens.alice, group_ids=[groups[g] for g in before])

    response = patch(api, tokens.alice, nana["id"], {"group_ids": [groups[g] for g in after]})

    assert response.status_code == 200, response.text
    assert sorted(response.json["group_ids"]) == sorted(groups[g] for g in after)
    counts = group_counts(api, tokens.alice)
    assert {g for g, gid in groups.items() if counts[gid]} == set(after)


# --- delete --------------------------------------------------------------------------------


def test_deleting_a_recipient_cancels_their_jobs_not_yet_started_and_leaves_the_rest(api, tokens):
    household = family(tokens.alice_id)
    jobs = {status: notification_job(household, status=status) for status in JobStatus}

    response = api.simulate_delete(recipient_path(household.recipient.id), headers=tokens.alice)

    assert response.status_code == 200, response.text
    assert response.json == {"deleted": True, "cancelled_jobs": 2}
    after = {status: reload(job).status for status, job in jobs.items()}
    assert after == {
        **{status: status for status in JobStatus},
        JobStatus.PENDING: JobStatus.CANCELLED,
        JobStatus.QUEUED: JobStatus.CANCELLED,
    }


def test_a_deleted_recipient_is_gone_from_reads_lists_and_groups(api, tokens):
    group = create_group(api, tokens.alice)["id"]
    nana = create_recipient(api, tokens.alice, group_ids=[group])

    deleted = api.simulate_delete(recipient_path(nana["id"]), headers=tokens.alice)

    assert deleted.status_code == 200, deleted.text
    assert_json_error(api.simulate_get(recipient_path(nana["id"]), headers=tokens.alice), 404)
    assert recipients_listed(api, tokens.alice) == []
    assert group_counts(api, tokens.alice) == {group: 0}
    assert GroupMembership.select().count() == 0
