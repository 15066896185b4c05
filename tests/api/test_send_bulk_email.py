"""POST /api/notifications/send-bulk-email: up to a thousand emails accepted in request order, or
all refused for one bad one; identical contents travel to the broker, and to SendGrid, as one
batch."""

from __future__ import annotations

import json

import pytest

from tests.support.email_api import BULK, EMAIL, email, job_rows
from tests.support.http_assertions import assert_json_error, error_fields
from tests.support.queues import queued_messages
from tribe_shared.contract import Actor, JobStatus, Queue


def test_when_redis_is_down_a_bulk_request_is_still_accepted_and_every_job_stays_pending(
    redis_down_api, tokens
):
    emails = [email(to=f"guest{i}@example.com") for i in range(3)]

    response = redis_down_api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    assert response.status_code == 202, response.text
    assert [job["status"] for job in response.json["jobs"]] == ["pending"] * 3
    assert {job.status for job in job_rows()} == {JobStatus.PENDING}
    assert len(job_rows()) == 3


def test_bulk_emails_are_accepted_with_their_jobs_in_request_order(api, tokens):
    addresses = ["zoe@example.com", "adam@example.com", "mia@example.com"]
    emails = [email(to=to, templateData={"name": to}) for to in addresses]

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    assert response.status_code == 202, response.text
    body = response.json
    assert set(body) == {"success", "jobs", "statusCode", "message"}
    assert body["success"] is True
    assert body["statusCode"] == 202
    assert isinstance(body["message"], str) and body["message"]
    assert [set(job) for job in body["jobs"]] == [{"jobId", "to", "status"}] * 3
    assert [job["to"] for job in body["jobs"]] == addresses
    assert [job["status"] for job in body["jobs"]] == ["queued"] * 3
    stored = {str(job.id): job for job in job_rows()}
    assert [stored[job["jobId"]].to_email for job in body["jobs"]] == addresses
    assert {job.status for job in stored.values()} == {JobStatus.QUEUED}


#: (index of the bad email among three, its changes, the field the 400 must name)
INVALID_ITEMS = {
    "bad address first": (0, {"to": "nope"}, "emails[0].to"),
    "unknown type in the middle": (1, {"type": "newsletter"}, "emails[1].type"),
    "unknown field last": (2, {"cc": "x@example.com"}, "emails[2].cc"),
    "CR LF in a subject": (1, {"subject": "Hi\r\nBcc: x@evil.com"}, "emails[1].subject"),
}


@pytest.mark.parametrize(
    ("index", "changes", "field"), INVALID_ITEMS.values(), ids=INVALID_ITEMS.keys()
)
def test_one_invalid_email_refuses_the_whole_bulk_request(
    api, tokens, stub_broker, index, changes, field
):
    emails = [email(to=f"guest{i}@example.com") for i in range(3)]
    emails[index] = {**emails[index], **changes}

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == {field}
    assert job_rows() == []
    assert queued_messages(stub_broker) == []


@pytest.mark.parametrize(
    "body",
    [{"emails": []}, {"emails": [EMAIL] * 1001}, {}, {"emails": EMAIL}, {"emails": None}],
    ids=["no emails", "1001 emails", "emails missing", "emails an object", "emails null"],
)
def test_a_bulk_request_needs_one_to_a_thousand_emails(api, tokens, body):
    response = api.simulate_post(BULK, json=body, headers=tokens.service)

    assert error_fields(assert_json_error(response, 400)) == {"emails"}
    assert job_rows() == []


def test_a_thousand_identical_emails_are_accepted_as_one_batch_message(api, tokens, stub_broker):
    emails = [email(to=f"guest{i}@example.com") for i in range(1000)]

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    assert response.status_code == 202, response.text
    assert len(job_rows()) == 1000
    (message,) = queued_messages(stub_broker)
    assert message.args == ([job["jobId"] for job in response.json["jobs"]],)


def test_identical_emails_are_handed_to_the_broker_as_one_batch_message(api, tokens, stub_broker):
    emails = [email(to=f"guest{i}@example.com") for i in range(3)]

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    (message,) = queued_messages(stub_broker)
    assert message.actor_name == Actor.SEND_EMAIL_BATCH
    assert message.args == ([job["jobId"] for job in response.json["jobs"]],)


def test_emails_with_different_contents_are_handed_over_as_separate_messages(
    api, tokens, stub_broker
):
    emails = [
        email(to="a@example.com"),
        email(to="b@example.com", subject="Another subject"),
        email(to="c@example.com"),
        email(to="d@example.com", templateData={"name": "Grandpa"}),
        email(to="e@example.com", priority="urgent"),
    ]

    response = api.simulate_post(BULK, json={"emails": emails}, headers=tokens.service)

    a, b, c, d, e = (job["jobId"] for job in response.json["jobs"])
    handed = {(m.actor_name, json.dumps(m.args)) for m in queued_messages(stub_broker)}
    assert handed == {
        (Actor.SEND_EMAIL_BATCH, json.dumps([[a, c]])),
        (Actor.SEND_EMAIL, json.dumps([b])),
        (Actor.SEND_EMAIL, json.dumps([d])),
    }
    (urgent,) = queued_messages(stub_broker, Queue.URGENT)
    assert (urgent.actor_name, urgent.args) == ("send_email_urgent", (e,))


def test_a_batch_reaches_sendgrid_as_one_request_with_a_personalization_per_email(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    addresses = [f"guest{i}@example.com" for i in range(5)]

    response = api.simulate_post(
        BULK, json={"emails": [email(to=to) for to in addresses]}, headers=tokens.service
    )
    stub_broker.join(Queue.EMAILS)
    stub_worker.join()

    (request,) = sendgrid.wait_for_requests(1)
    assert len(request.body["personalizations"]) == 5
    assert request.recipients == addresses
    assert request.job_ids == [job["jobId"] for job in response.json["jobs"]]
    assert len(sendgrid.requests) == 1
    jobs = job_rows()
    assert {job.status for job in jobs} == {JobStatus.SENT}
    assert {job.message_id for job in jobs} == {request.message_id}
