"""POST /api/notifications: one notification to a recipient of a group, for its owner only,
validated field by field, and never a half-written row."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from tests.support.family import NOTIFICATION_CONTENT, family, recipient_of, update_in
from tests.support.http_assertions import assert_json_error, error_fields
from tests.support.queues import queued_messages
from tribe_shared.contract import Actor, JobKind, JobStatus, Queue
from tribe_shared.models import NotificationJob, utcnow
from tribe_shared.outbox import HAND_OVER_HORIZON

NOTIFICATIONS_URL = "/api/notifications"


def body_for(fam, **fields) -> dict:
    return {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "content": NOTIFICATION_CONTENT,
        **fields,
    }


def post(api, headers, body):
    return api.simulate_post(NOTIFICATIONS_URL, json=body, headers=headers)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def alices(tokens):
    return family(tokens.alice_id)


@pytest.fixture
def bobs(tokens):
    return family(tokens.bob_id, name="Grandpa Joe", email="joe@example.com")


def assert_nothing_stored():
    assert NotificationJob.select().count() == 0


def test_a_notification_is_accepted_as_a_queued_job_and_handed_to_the_broker(
    api, tokens, alices, stub_broker
):
    response = post(api, tokens.alice, body_for(alices, urgency="normal"))

    assert response.status_code == 202, response.text
    body = response.json
    job = body["job"]
    assert body["jobId"] == job["id"]
    assert body["status"] == job["status"] == JobStatus.QUEUED
    assert job["kind"] == JobKind.NOTIFICATION
    assert job["recipient_id"] == str(alices.recipient.id)
    assert job["group_id"] == str(alices.group.id)
    assert job["delivery_method"] == "email"
    assert job["notification_type"] == "immediate"
    assert job["content"] == NOTIFICATION_CONTENT
    stored = NotificationJob.get_by_id(uuid.UUID(job["id"]))
    assert stored.created_by_id == tokens.alice_id
    assert stored.to_email == alices.recipient.email
    (message,) = queued_messages(stub_broker)
    assert message.actor_name == Actor.DISPATCH_NOTIFICATION
    assert list(message.args) == [job["id"]]


def test_an_update_of_the_group_may_be_named(api, tokens, alices):
    update = update_in(alices.group)

    response = post(api, tokens.alice, body_for(alices, update_id=str(update.id)))

    assert response.status_code == 202, response.text
    assert response.json["job"]["update_id"] == str(update.id)


@pytest.mark.parametrize("borrowed", ["recipient_id", "group_id"])
def test_another_users_recipient_or_group_is_a_404_that_says_nothing_about_it(
    api, tokens, alices, bobs, borrowed
):
    # Bob names one of Alice's objects (the other is his own)
    theirs = body_for(bobs, **{borrowed: body_for(alices)[borrowed]})
    unknown_id = str(uuid.uuid4())
    nobodys = body_for(bobs, **{borrowed: unknown_id})

    response = post(api, tokens.bob, theirs)
    missing = post(api, tokens.bob, nobodys)

    body = assert_json_error(response, 404)
    # Exactly what a made-up id gets: nothing tells Bob that Alice's exists
    assert body == {
        key: (value.replace(unknown_id, theirs[borrowed]) if isinstance(value, str) else value)
        for key, value in missing.json.items()
    }
    assert alices.recipient.name not in response.text
    assert_nothing_stored()


def test_the_service_role_may_notify_anyones_recipient(api, tokens, alices):
    response = post(api, tokens.service, body_for(alices))

    assert response.status_code == 202, response.text
    stored = NotificationJob.get_by_id(uuid.UUID(response.json["jobId"]))
    assert stored.recipient_id == alices.recipient.id
    assert stored.created_by_id == tokens.service_id


def test_a_recipient_not_in_the_group_is_a_422_naming_recipient_id(api, tokens, alices):
    outsider = recipient_of(alices.owner, name="Neighbour", email="next.door@example.com")

    response = post(api, tokens.alice, body_for(alices, recipient_id=str(outsider.id)))

    body = assert_json_error(response, 422)
    assert error_fields(body) == {"recipient_id"}
    assert_nothing_stored()


def test_an_update_of_another_group_is_a_422_naming_update_id(api, tokens, alices):
    other_group = family(alices.owner.id).group
    update = update_in(other_group)

    response = post(api, tokens.alice, body_for(alices, update_id=str(update.id)))

    body = assert_json_error(response, 422)
    assert error_fields(body) == {"update_id"}
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("method", "contact"),
    [("email", {"email": None, "phone": "+447700900123"}), ("sms", {"phone": None})],
)
def test_a_method_the_recipient_cannot_be_reached_by_is_a_422_naming_delivery_method(
    api, tokens, method, contact
):
    fam = family(tokens.alice_id, **contact)

    response = post(api, tokens.alice, body_for(fam, delivery_method=method))

    body = assert_json_error(response, 422)
    assert error_fields(body) == {"delivery_method"}
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"scheduled_for": "2030-01-01T09:00:00Z", "delay_minutes": 10}, None),
        ({"delay_minutes": 366 * 24 * 60 + 1}, "delay_minutes"),
        ({"delay_minutes": -1}, "delay_minutes"),
        ({"priority": "urgent"}, "priority"),
        ({"urgency": "whenever"}, "urgency"),
        ({"delivery_method": "pigeon"}, "delivery_method"),
        ({"scheduled_for": "2030-01-01T09:00:00"}, "scheduled_for"),  # no timezone
    ],
)
def test_a_malformed_request_is_a_400_and_stores_nothing(api, tokens, alices, fields, named):
    response = post(api, tokens.alice, body_for(alices, **fields))

    body = assert_json_error(response, 400)
    if named is not None:
        assert named in error_fields(body)
    assert_nothing_stored()


@pytest.mark.parametrize("missing", ["recipient_id", "group_id"])
def test_a_request_without_its_recipient_or_group_is_a_400_naming_it(api, tokens, alices, missing):
    body = body_for(alices)
    del body[missing]

    response = post(api, tokens.alice, body)

    assert error_fields(assert_json_error(response, 400)) == {missing}
    assert_nothing_stored()


def test_a_delayed_notification_is_scheduled_and_waits_in_the_outbox(
    api, tokens, alices, stub_broker
):
    before = utcnow()

    response = post(api, tokens.alice, body_for(alices, delay_minutes=10))

    assert response.status_code == 202, response.text
    job = response.json["job"]
    scheduled_for = parse_time(job["scheduled_for"])
    assert before + timedelta(minutes=10) <= scheduled_for <= utcnow() + timedelta(minutes=10)
    assert scheduled_for > utcnow() + HAND_OVER_HORIZON
    assert response.json["status"] == job["status"] == JobStatus.PENDING
    assert queued_messages(stub_broker) == []
    assert queued_messages(stub_broker, f"{Queue.EMAILS}.DQ") == []


def test_a_notification_scheduled_within_minutes_is_handed_over_with_a_broker_delay(
    api, tokens, alices, stub_broker
):
    soon = (utcnow() + timedelta(minutes=2)).isoformat()

    response = post(api, tokens.alice, body_for(alices, scheduled_for=soon))

    assert response.status_code == 202, response.text
    assert response.json["status"] == JobStatus.QUEUED
    assert queued_messages(stub_broker) == []
    (delayed,) = queued_messages(stub_broker, f"{Queue.EMAILS}.DQ")
    assert list(delayed.args) == [response.json["jobId"]]


def test_notifications_need_a_token(api, alices):
    response = api.simulate_post(NOTIFICATIONS_URL, json=body_for(alices))

    assert_json_error(response, 401)
    assert_nothing_stored()
