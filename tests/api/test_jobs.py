"""GET /api/jobs/{id}: a job, its recipient and its delivery log, visible to its owner only."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http_assertions import assert_json_error
from tribe_shared.contract import JobKind, JobStatus, Queue
from tribe_shared.models import NotificationJob, Recipient, User

EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}
#: The job fields the contract promises.
CONTRACT_JOB_FIELDS = {
    "id",
    "status",
    "delivery_method",
    "notification_type",
    "urgency",
    "scheduled_for",
    "created_at",
    "processed_at",
    "processing_time_ms",
    "time_until_scheduled_ms",
    "retry_count",
    "message_id",
    "failure_reason",
}


def job_path(job_id) -> str:
    return f"/api/jobs/{job_id}"


@pytest.fixture
def alices_job(api, tokens) -> str:
    """The id of a queued email job Alice sent (no worker runs)."""
    response = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=tokens.alice)
    assert response.status_code == 202, response.text
    return response.json["jobId"]


def test_the_owner_sees_a_sent_job_with_no_recipient_and_its_delivery_log(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    accepted = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=tokens.alice)
    stub_broker.join(Queue.EMAILS)
    stub_worker.join()
    (request,) = sendgrid.wait_for_requests(1)

    response = api.simulate_get(job_path(accepted.json["jobId"]), headers=tokens.alice)

    assert response.status_code == 200, response.text
    body = response.json
    assert set(body) == {"job", "recipient", "delivery_logs", "events"}
    job = body["job"]
    assert set(job) >= CONTRACT_JOB_FIELDS
    assert job["id"] == accepted.json["jobId"]
    assert job["status"] == "sent"
    assert job["message_id"] == request.message_id
    assert job["processed_at"] is not None
    assert job["failure_reason"] is None
    assert body["recipient"] is None
    (log,) = body["delivery_logs"]
    assert log["attempt"] == 1
    assert log["provider"] == "sendgrid"
    assert log["status"] == "sent"
    assert log["provider_message_id"] == request.message_id
    assert log["error"] is None


def test_a_job_not_yet_sent_has_an_empty_delivery_log(api, tokens, alices_job):
    response = api.simulate_get(job_path(alices_job), headers=tokens.alice)

    assert response.status_code == 200, response.text
    assert response.json["job"]["status"] == "queued"
    assert response.json["job"]["processed_at"] is None
    assert response.json["delivery_logs"] == []


def test_the_owner_of_a_jobs_recipient_sees_it_with_the_recipient(api, tokens):
    alice = User.create(id=tokens.alice_id)
    nana = Recipient.create(owner=alice, name="Nana", relationship="grandmother")
    job = NotificationJob.create(
        kind=JobKind.NOTIFICATION, owner=nana.owner_id, recipient=nana, to_email="n@x.org"
    )

    response = api.simulate_get(job_path(job.id), headers=tokens.alice)

    assert response.status_code == 200, response.text
    assert response.json["recipient"] == {
        "id": str(nana.id),
        "name": "Nana",
        "relationship": "grandmother",
    }
    assert response.json["job"]["status"] == JobStatus.PENDING


def test_another_user_gets_the_same_404_as_for_a_job_that_does_not_exist(api, tokens, alices_job):
    missing = uuid.uuid4()

    theirs = api.simulate_get(job_path(alices_job), headers=tokens.bob)
    nobodys = api.simulate_get(job_path(missing), headers=tokens.bob)

    body = assert_json_error(theirs, 404)
    assert body == {
        key: value.replace(str(missing), alices_job) for key, value in nobodys.json.items()
    }
    assert "nana@example.com" not in theirs.text
    assert "queued" not in theirs.text


def test_another_user_cannot_see_a_job_for_someone_elses_recipient(api, tokens):
    alice = User.create(id=tokens.alice_id)
    nana = Recipient.create(owner=alice, name="Nana")
    job = NotificationJob.create(kind=JobKind.NOTIFICATION, owner=nana.owner_id, recipient=nana)

    response = api.simulate_get(job_path(job.id), headers=tokens.bob)

    assert "Nana" not in assert_json_error(response, 404)["description"]


def test_the_service_role_sees_any_users_job(api, tokens, alices_job):
    response = api.simulate_get(job_path(alices_job), headers=tokens.service)

    assert response.status_code == 200, response.text
    assert response.json["job"]["id"] == alices_job


@pytest.mark.parametrize(
    "job_id",
    [str(uuid.uuid4()), "not-a-uuid", "42", f"{uuid.uuid4()}x", "%00"],
    ids=["unknown", "words", "number", "uuid with a tail", "NUL"],
)
def test_an_unknown_or_malformed_job_id_is_a_json_404(api, tokens, job_id):
    response = api.simulate_get(job_path(job_id), headers=tokens.alice)

    assert_json_error(response, 404)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "POST"])
def test_a_method_the_job_route_does_not_serve_is_a_json_405(api, tokens, alices_job, method):
    response = api.simulate_request(method, job_path(alices_job), json={}, headers=tokens.alice)

    assert_json_error(response, 405)


def test_a_job_without_a_token_is_a_json_401(api, alices_job):
    response = api.simulate_get(job_path(alices_job))

    assert_json_error(response, 401)
