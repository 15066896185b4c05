"""``/api/digest-schedules``: create, read, list, change, pause, resume and delete schedules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing

from tests.support.clocks import Clock
from tests.support.family import family, group_of, recipient_of, user
from tests.support.family_api import job_row
from tribe_api.app import create_app
from tribe_shared.contract import JobKind, JobStatus, NotificationType
from tribe_shared.models import DigestSchedule, NotificationJob

SCHEDULES = "/api/digest-schedules"
#: A Wednesday, 10:00 UTC (06:00 in New York, 11:00 in London).
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client(settings, stub_broker, worker_app, clock) -> testing.TestClient:
    return testing.TestClient(create_app(settings, broker=stub_broker, clock=clock))


def path(schedule_id) -> str:
    return f"{SCHEDULES}/{schedule_id}"


def body_for(fam, **fields) -> dict:
    return {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "frequency": "daily",
        "delivery_time": "09:00",
        "timezone": "America/New_York",
        **fields,
    }


def create(client, headers, fam, **fields) -> dict:
    response = client.simulate_post(SCHEDULES, json=body_for(fam, **fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json


def error_fields(response) -> list[str]:
    return [error["field"] for error in response.json.get("errors", [])]


def test_a_daily_schedule_is_created_with_its_next_run_in_utc(client, tokens):
    # Given Alice's recipient in her group
    fam = family(tokens.alice_id)

    # When she asks for a daily 09:00 New York digest
    response = client.simulate_post(SCHEDULES, json=body_for(fam), headers=tokens.alice)

    # Then it is stored with defaults, and its first run is 09:00 EST today = 14:00 UTC
    assert response.status_code == 201, response.text
    schedule = response.json
    assert response.headers["location"] == path(schedule["id"])
    assert schedule["delivery_time"] == "09:00:00"
    assert schedule["delivery_day"] is None
    assert schedule["is_active"] is True
    assert schedule["max_updates_per_digest"] == 10
    assert schedule["include_content_types"] == ["photo", "milestone", "text", "video"]
    assert schedule["last_digest_sent"] is None
    assert schedule["next_digest_scheduled"] == "2026-11-25T14:00:00Z"
    assert client.simulate_get(path(schedule["id"]), headers=tokens.alice).json == schedule


@pytest.mark.parametrize(
    ("fields", "next_run"),
    [
        # Weekly on Sunday (7) at 18:30 London time: Sunday 29 November, GMT.
        ({"frequency": "weekly", "delivery_day": 7, "delivery_time": "18:30",
          "timezone": "Europe/London"}, "2026-11-29T18:30:00Z"),
        # Monthly on the 31st: November has 30 days, so the 30th.
        ({"frequency": "monthly", "delivery_day": 31, "delivery_time": "08:15:30",
          "timezone": "UTC"}, "2026-11-30T08:15:30Z"),
        # Daily at 07:00 in Sydney (UTC+11 in summer): tomorrow 07:00 local = today 20:00 UTC.
        ({"delivery_time": "07:00", "timezone": "Australia/Sydney"}, "2026-11-25T20:00:00Z"),
    ],
)  # fmt: skip
def test_weekly_monthly_and_far_zones_get_the_right_first_run(client, tokens, fields, next_run):
    fam = family(tokens.alice_id)
    assert create(client, tokens.alice, fam, **fields)["next_digest_scheduled"] == next_run


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frequency": "hourly"}, "frequency"),
        ({"delivery_time": "9:00"}, "delivery_time"),
        ({"delivery_time": "24:00"}, "delivery_time"),
        ({"delivery_time": "09:60"}, "delivery_time"),
        ({"delivery_time": "09:00:00.5"}, "delivery_time"),
        ({"frequency": "weekly"}, "delivery_day"),
        ({"frequency": "monthly"}, "delivery_day"),
        ({"delivery_day": 3}, "delivery_day"),
        ({"frequency": "weekly", "delivery_day": 8}, "delivery_day"),
        ({"frequency": "weekly", "delivery_day": 0}, "delivery_day"),
        ({"frequency": "monthly", "delivery_day": 32}, "delivery_day"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"max_updates_per_digest": 0}, "max_updates_per_digest"),
        ({"max_updates_per_digest": 101}, "max_updates_per_digest"),
        ({"include_content_types": []}, "include_content_types"),
        ({"include_content_types": ["audio"]}, "include_content_types[0]"),
        ({"include_content_types": ["photo", "photo"]}, "include_content_types"),
        ({"recipient_id": "not-a-uuid"}, "recipient_id"),
        ({"colour": "blue"}, "colour"),
        ({"last_digest_sent": "2026-01-01T00:00:00Z"}, "last_digest_sent"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(client, tokens, fields, field):
    fam = family(tokens.alice_id)
    response = client.simulate_post(SCHEDULES, json=body_for(fam, **fields), headers=tokens.alice)
    assert response.status_code == 400, response.text
    assert field in error_fields(response)
    assert DigestSchedule.select().count() == 0


def test_a_missing_required_field_is_named(client, tokens):
    fam = family(tokens.alice_id)
    body = body_for(fam)
    del body["timezone"]
    response = client.simulate_post(SCHEDULES, json=body, headers=tokens.alice)
    assert response.status_code == 400
    assert error_fields(response) == ["timezone"]


def test_a_second_schedule_for_the_same_recipient_and_group_is_a_conflict(client, tokens):
    fam = family(tokens.alice_id)
    create(client, tokens.alice, fam)
    response = client.simulate_post(
        SCHEDULES, json=body_for(fam, frequency="weekly", delivery_day=1), headers=tokens.alice
    )
    assert response.status_code == 409
    assert "already has a digest schedule" in response.json["description"]
    assert DigestSchedule.select().count() == 1


def test_the_recipient_must_be_in_the_group(client, tokens):
    fam = family(tokens.alice_id)
    other_group = group_of(fam.owner, "Friends")
    response = client.simulate_post(
        SCHEDULES, json=body_for(fam, group_id=str(other_group.id)), headers=tokens.alice
    )
    assert response.status_code == 422
    assert error_fields(response) == ["recipient_id"]


def test_someone_elses_recipient_or_group_is_not_found(client, tokens):
    alice, bob = family(tokens.alice_id), family(tokens.bob_id)
    for fields in ({"recipient_id": str(bob.recipient.id)}, {"group_id": str(bob.group.id)}):
        response = client.simulate_post(
            SCHEDULES, json=body_for(alice, **fields), headers=tokens.alice
        )
        assert response.status_code == 404, fields
        assert "description" in response.json


def test_another_users_schedule_is_not_found_on_every_route(client, tokens):
    # Given a schedule of Alice's
    schedule = create(client, tokens.alice, family(tokens.alice_id))
    family(tokens.bob_id)

    # Then Bob cannot see, list, change or delete it: each answers as if it did not exist
    assert client.simulate_get(path(schedule["id"]), headers=tokens.bob).status_code == 404
    listed = client.simulate_get(SCHEDULES, headers=tokens.bob).json["digest_schedules"]
    assert listed == []
    patched = client.simulate_patch(
        path(schedule["id"]), json={"is_active": False}, headers=tokens.bob
    )
    assert patched.status_code == 404
    assert client.simulate_delete(path(schedule["id"]), headers=tokens.bob).status_code == 404
    assert DigestSchedule.get_by_id(schedule["id"]).is_active is True
    assert client.simulate_get(path(uuid.uuid4()), headers=tokens.alice).status_code == 404

    # And the service role sees and changes it
    assert client.simulate_get(path(schedule["id"]), headers=tokens.service).status_code == 200
    listed = client.simulate_get(SCHEDULES, headers=tokens.service).json["digest_schedules"]
    assert [s["id"] for s in listed] == [schedule["id"]]


def test_the_service_role_creates_a_schedule_owned_by_the_recipients_owner(client, tokens):
    fam = family(tokens.alice_id)
    response = client.simulate_post(SCHEDULES, json=body_for(fam), headers=tokens.service)
    assert response.status_code == 201
    assert client.simulate_get(path(response.json["id"]), headers=tokens.alice).status_code == 200


def test_the_list_filters_by_recipient_group_frequency_and_activity(client, tokens, clock):
    # Given two recipients in two groups with three schedules
    owner = user(tokens.alice_id)
    family_group, friends = group_of(owner, "Family"), group_of(owner, "Friends")
    nana = recipient_of(owner, name="Nana", groups=(family_group, friends))
    tom = recipient_of(owner, name="Tom", email="tom@example.com", groups=(friends,))
    daily = create_for(client, tokens, nana, family_group)
    clock.now += timedelta(seconds=1)
    weekly = create_for(client, tokens, nana, friends, frequency="weekly", delivery_day=5)
    clock.now += timedelta(seconds=1)
    paused = create_for(client, tokens, tom, friends, is_active=False)

    def ids(query: str) -> list[str]:
        response = client.simulate_get(SCHEDULES, query_string=query, headers=tokens.alice)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json["digest_schedules"]]

    assert ids("") == [daily["id"], weekly["id"], paused["id"]]
    assert ids(f"recipient_id={nana.id}") == [daily["id"], weekly["id"]]
    assert ids(f"group_id={friends.id}") == [weekly["id"], paused["id"]]
    assert ids("frequency=weekly") == [weekly["id"]]
    assert ids("is_active=false") == [paused["id"]]
    assert ids(f"is_active=true&group_id={friends.id}") == [weekly["id"]]


@pytest.mark.parametrize(
    "query", ["frequency=hourly", "is_active=maybe", "recipient_id=12", "colour=red"]
)
def test_bad_list_filters_are_refused(client, tokens, query):
    response = client.simulate_get(SCHEDULES, query_string=query, headers=tokens.alice)
    assert response.status_code == 400
    assert query.split("=")[0] in error_fields(response)


def create_for(client, tokens, recipient, group, **fields) -> dict:
    body = {
        "recipient_id": str(recipient.id),
        "group_id": str(group.id),
        "frequency": "daily",
        "delivery_time": "09:00",
        "timezone": "UTC",
        **fields,
    }
    response = client.simulate_post(SCHEDULES, json=body, headers=tokens.alice)
    assert response.status_code == 201, response.text
    return response.json


def test_a_change_of_time_moves_the_next_run(client, tokens):
    schedule = create(client, tokens.alice, family(tokens.alice_id))
    response = client.simulate_patch(
        path(schedule["id"]),
        json={"delivery_time": "05:30", "frequency": "weekly", "delivery_day": 1},
        headers=tokens.alice,
    )
    assert response.status_code == 200, response.text
    # 05:30 New York on the next Monday (30 November), EST.
    assert response.json["next_digest_scheduled"] == "2026-11-30T10:30:00Z"
    assert response.json["delivery_time"] == "05:30:00"


@pytest.mark.parametrize(
    ("patch", "field", "status"),
    [
        ({"frequency": "weekly"}, "delivery_day", 422),
        ({"delivery_day": 2}, "delivery_day", 422),
        ({"frequency": None}, "frequency", 422),
        ({"is_active": None}, "is_active", 422),
        ({"delivery_time": None}, "delivery_time", 422),  # was a 500 (found by schemathesis)
        ({"timezone": "Nowhere/Town"}, "timezone", 400),
        ({"recipient_id": str(uuid.uuid4())}, "recipient_id", 400),
        ({"next_digest_scheduled": "2030-01-01T00:00:00Z"}, "next_digest_scheduled", 400),
    ],
)
def test_a_bad_change_is_refused_and_changes_nothing(client, tokens, patch, field, status):
    schedule = create(client, tokens.alice, family(tokens.alice_id))
    response = client.simulate_patch(path(schedule["id"]), json=patch, headers=tokens.alice)
    assert response.status_code == status, response.text
    assert field in error_fields(response)
    assert client.simulate_get(path(schedule["id"]), headers=tokens.alice).json == schedule


def test_pausing_stops_the_runs_and_resuming_starts_from_now(client, tokens, clock):
    # Given a daily schedule, paused
    schedule = create(client, tokens.alice, family(tokens.alice_id))
    paused = client.simulate_patch(
        path(schedule["id"]), json={"is_active": False}, headers=tokens.alice
    ).json
    assert paused["is_active"] is False
    assert paused["next_digest_scheduled"] is None

    # When it is resumed ten days later
    clock.now = NOW + timedelta(days=10)
    resumed = client.simulate_patch(
        path(schedule["id"]), json={"is_active": True}, headers=tokens.alice
    ).json

    # Then its next run is the first one after now: no backlog of the ten missed days
    assert resumed["next_digest_scheduled"] == "2026-12-05T14:00:00Z"


def test_a_change_while_a_run_is_due_keeps_that_run(client, tokens, clock):
    # Given a schedule whose 14:00 UTC run is due, and the scheduler has not reached it yet
    schedule = create(client, tokens.alice, family(tokens.alice_id))
    clock.now = datetime(2026, 11, 25, 14, 0, 20, tzinfo=UTC)

    # When its cap changes
    response = client.simulate_patch(
        path(schedule["id"]), json={"max_updates_per_digest": 3}, headers=tokens.alice
    )

    # Then the due run stays, for the scheduler to turn into today's digest
    assert response.json["max_updates_per_digest"] == 3
    assert response.json["next_digest_scheduled"] == "2026-11-25T14:00:00Z"


def test_deleting_a_schedule_cancels_its_digests_not_yet_started(client, tokens):
    fam = family(tokens.alice_id)
    schedule = create(client, tokens.alice, fam)
    waiting = digest_job(fam, schedule["id"], JobStatus.QUEUED)
    done = digest_job(fam, schedule["id"], JobStatus.SENT)

    response = client.simulate_delete(path(schedule["id"]), headers=tokens.alice)

    assert response.status_code == 200
    assert response.json == {"deleted": True, "cancelled_jobs": 1}
    assert NotificationJob.get_by_id(waiting.id).status == JobStatus.CANCELLED
    assert NotificationJob.get_by_id(done.id).status == JobStatus.SENT
    assert client.simulate_get(path(schedule["id"]), headers=tokens.alice).status_code == 404


def digest_job(fam, schedule_id, status) -> NotificationJob:
    return job_row(
        fam.owner.id,
        kind=JobKind.DIGEST,
        status=status,
        recipient=fam.recipient.id,
        owner=fam.owner.id,
        group=fam.group.id,
        digest_schedule=schedule_id,
        digest_period=NOW + timedelta(minutes=len(NotificationJob.select())),
        notification_type=NotificationType.DIGEST,
    )


def test_a_recipient_with_an_active_schedule_gets_the_update_in_a_digest_not_at_once(
    client, tokens
):
    fam = family(tokens.alice_id)
    create(client, tokens.alice, fam)
    response = client.simulate_post(
        "/api/updates",
        json={"group_id": str(fam.group.id), "content_type": "text", "body": "Hello"},
        headers=tokens.alice,
    )
    assert response.status_code == 202
    assert response.json["notifications"]["in_digest"] == 1
    assert NotificationJob.select().count() == 0
