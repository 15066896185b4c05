"""POST /api/notifications/send-email: accept fast, store, hand over (bulk: test_send_bulk_email.py;
the refusal of a body that is not acceptable JSON is checked for both routes here)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing

from tests.support.email_api import BULK, EMAIL, SEND, email, job_rows
from tests.support.family import family
from tests.support.http_assertions import assert_json_error, error_fields
from tests.support.queues import queued_messages
from tribe_api.app import create_app
from tribe_api.middleware import MAX_BODY_BYTES
from tribe_shared.contract import Actor, JobStatus, Queue


@pytest.fixture(autouse=True)
def nana_is_alices(db_url, tokens):
    """Alice's recipient Nana: a user may email only their own recipients."""
    return family(tokens.alice_id, email=EMAIL["to"])


def without(field: str) -> dict:
    return {name: value for name, value in EMAIL.items() if name != field}


@pytest.fixture
def unbrokered_api(settings) -> testing.TestClient:
    """The API with no broker at all (development without Redis)."""
    return testing.TestClient(create_app(settings, broker=None))


# --- send-email: accepted --------------------------------------------------------------


def test_an_accepted_email_answers_202_with_exactly_the_contract_shape(api, tokens):
    response = api.simulate_post(SEND, json=EMAIL, headers=tokens.service)

    assert response.status_code == 202
    body = response.json
    assert set(body) == {"success", "messageId", "jobId", "status", "statusCode", "message"}
    assert body["success"] is True
    assert uuid.UUID(body["jobId"])
    assert body["messageId"] == body["jobId"]
    assert body["status"] == "queued"
    assert body["statusCode"] == 202
    assert body["message"] == "Email queued for delivery"


def test_an_accepted_email_is_a_queued_job_row_and_one_send_email_message(api, tokens, stub_broker):
    response = api.simulate_post(
        SEND, json=email(subject="Hello", priority="low"), headers=tokens.alice
    )

    (job,) = job_rows()
    assert str(job.id) == response.json["jobId"]
    assert job.status == JobStatus.QUEUED
    assert job.queued_at is not None
    assert job.to_email == "nana@example.com"
    assert job.created_by_id == tokens.alice_id
    assert job.urgency == "low"
    assert job.content == {"type": "welcome", "subject": "Hello", "templateData": {"name": "Nana"}}
    (message,) = queued_messages(stub_broker)
    assert message.actor_name == Actor.SEND_EMAIL
    assert message.args == (str(job.id),)
    assert queued_messages(stub_broker, Queue.URGENT) == []


@pytest.mark.parametrize("priority", ["high", "urgent"])
def test_a_high_or_urgent_email_travels_on_the_fast_lane(api, tokens, stub_broker, priority):
    response = api.simulate_post(SEND, json=email(priority=priority), headers=tokens.alice)

    (message,) = queued_messages(stub_broker, Queue.URGENT)
    assert message.actor_name == "send_email_urgent"
    assert message.args == (response.json["jobId"],)
    assert queued_messages(stub_broker, Queue.EMAILS) == []


def test_without_a_broker_the_email_is_accepted_as_a_pending_job(unbrokered_api, tokens):
    response = unbrokered_api.simulate_post(SEND, json=EMAIL, headers=tokens.service)

    assert response.status_code == 202
    assert response.json["status"] == "pending"
    (job,) = job_rows()
    assert str(job.id) == response.json["jobId"]
    assert job.status == JobStatus.PENDING
    assert job.queued_at is None


def test_when_redis_is_down_the_email_is_still_accepted_and_its_job_stays_pending(
    redis_down_api, tokens
):
    response = redis_down_api.simulate_post(SEND, json=EMAIL, headers=tokens.service)

    assert response.status_code == 202, response.text
    assert response.json["status"] == "pending"
    (job,) = job_rows()
    assert str(job.id) == response.json["jobId"]
    assert job.status == JobStatus.PENDING


def test_an_email_scheduled_for_tomorrow_stays_pending_off_the_broker(api, tokens, stub_broker):
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    response = api.simulate_post(
        SEND, json=email(scheduled_for=tomorrow.isoformat()), headers=tokens.alice
    )

    assert response.status_code == 202
    assert response.json["status"] == "pending"
    (job,) = job_rows()
    assert job.scheduled_for == tomorrow
    assert queued_messages(stub_broker) == []
    assert queued_messages(stub_broker, f"{Queue.EMAILS}.DQ") == []


def test_a_body_of_exactly_one_mebibyte_is_accepted(api, tokens):
    # Emails of 60,000 characters of template data each (each field may hold 64 KiB), the
    # last one padded so that the body is exactly the limit
    emails = [email(templateData={"blob": "x" * 60_000}) for _ in range(17)]
    skeleton = json.dumps({"emails": [*emails, email(templateData={"blob": ""})]})
    last = email(templateData={"blob": "x" * (MAX_BODY_BYTES - len(skeleton))})
    body = json.dumps({"emails": [*emails, last]})
    assert len(body.encode()) == MAX_BODY_BYTES

    response = api.simulate_post(
        BULK, body=body, headers={**tokens.service, "Content-Type": "application/json"}
    )

    assert response.status_code == 202, response.text


# --- send-email: refused ---------------------------------------------------------------

#: (body as JSON, the fields the 400 must name)
INVALID_EMAILS = {
    "body is a list": (["nana@example.com"], {"body"}),
    "body is a string": ("nana@example.com", {"body"}),
    "to is a number": (email(to=42), {"to"}),
    "templateData is a list": (email(templateData=["Nana"]), {"templateData"}),
    "subject is a number": (email(subject=7), {"subject"}),
    "priority is a number": (email(priority=1), {"priority"}),
    "scheduled_for is not a date": (email(scheduled_for="tomorrow"), {"scheduled_for"}),
    "scheduled_for has no timezone": (
        email(scheduled_for="2030-01-01T09:00:00"),
        {"scheduled_for"},
    ),
    "unknown fields": (email(cc="x@example.com", bcc="y@example.com"), {"cc", "bcc"}),
    "address without @": (email(to="nana.example.com"), {"to"}),
    "address without domain": (email(to="nana@"), {"to"}),
    "address with a header injected": (email(to="nana@example.com\r\nBcc: x@evil.com"), {"to"}),
    "empty address": (email(to=""), {"to"}),
    "unknown type": (email(type="newsletter"), {"type"}),
    "unknown priority": (email(priority="asap"), {"priority"}),
    "CR LF in subject": (email(subject="Hi\r\nBcc: x@evil.com"), {"subject"}),
    "LF in subject": (email(subject="Hi\nthere"), {"subject"}),
    "CR in subject": (email(subject="Hi\rthere"), {"subject"}),
    "NUL in subject": (email(subject="Hi\0there"), {"subject"}),
    "NUL in templateData": (email(templateData={"name": "Na\0na"}), {"templateData"}),
    "NUL in a templateData key": (email(templateData={"na\0me": "Nana"}), {"templateData"}),
    "missing to": (without("to"), {"to"}),
    "missing type": (without("type"), {"type"}),
    "empty object": ({}, {"to", "type"}),
}


@pytest.mark.parametrize(("body", "fields"), INVALID_EMAILS.values(), ids=INVALID_EMAILS.keys())
def test_an_invalid_email_is_400_naming_each_bad_field_and_writes_no_job(
    api, tokens, stub_broker, body, fields
):
    response = api.simulate_post(SEND, json=body, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == fields
    assert job_rows() == []
    assert queued_messages(stub_broker) == []


def test_unknown_fields_are_named_as_unknown(api, tokens):
    response = api.simulate_post(SEND, json=email(reply_to="x@example.com"), headers=tokens.alice)

    body = assert_json_error(response, 400)
    assert body["errors"] == [
        {"field": "reply_to", "kind": "unknown_field", "message": "Unknown field"}
    ]


#: (raw body, content type, expected status)
REFUSED_BODIES = {
    "malformed JSON": ('{"to": "nana@example.com", ', "application/json", 400),
    "JSON with a NaN": (
        '{"to": "nana@example.com", "type": "system", "templateData": {"n": NaN}}',
        "application/json",
        400,
    ),
    "JSON with an overflowing number": (
        '{"to": "nana@example.com", "type": "system", "templateData": {"n": 1e999}}',
        "application/json",
        400,
    ),
    "plain text": (json.dumps(EMAIL), "text/plain", 415),
    "form-encoded": (
        "to=nana%40example.com&type=welcome",
        "application/x-www-form-urlencoded",
        415,
    ),
    "multipart form": (
        '--X\r\nContent-Disposition: form-data; name="to"\r\n\r\nnana@example.com\r\n--X--\r\n',
        "multipart/form-data; boundary=X",
        415,
    ),
    "over 1 MiB": (
        json.dumps(email(templateData={"blob": "x" * MAX_BODY_BYTES})),
        "application/json",
        413,
    ),
}


@pytest.mark.parametrize(
    ("body", "content_type", "status"), REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys()
)
@pytest.mark.parametrize("path", [SEND, BULK])
def test_a_body_that_is_not_acceptable_json_is_refused_and_writes_no_job(
    api, tokens, stub_broker, path, body, content_type, status
):
    if path == BULK and content_type == "application/json":
        body = f'{{"emails": [{body}]}}'

    response = api.simulate_post(
        path, body=body, headers={**tokens.service, "Content-Type": content_type}
    )

    assert_json_error(response, status)
    assert job_rows() == []
    assert queued_messages(stub_broker) == []
