"""GET /api/jobs/{id}: a job, its recipient and its delivery log, visible to its owner only; and
complete: timings, retries, the provider's message id, why it failed, the recipient and every
delivery attempt in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing

from tests.support.fakes.sendgrid import Reply
from tests.support.family import family, notification_job
from tests.support.family_api import NOTIFICATIONS, job_path, job_row
from tests.support.http_assertions import assert_json_error
from tests.support.waiting import drain
from tribe_api.app import create_app
from tribe_shared.contract import JobKind, JobStatus, Queue
from tribe_shared.models import DeliveryLog, NotificationJob, Recipient, User, utcnow

EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}


@pytest.fixture(autouse=True)
def nana_is_alices(db_url, tokens):
    """Alice's recipient Nana: a user may email only their own recipients."""
    return family(tokens.alice_id, email=EMAIL["to"])


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
HOUR_MS = 3_600_000
#: The clock of the API that counts down to a job's scheduled time.
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def notify(api, headers, household) -> str:
    """Queue a notification to the household's recipient through the API; its job id."""
    body = {
        "recipient_id": str(household.recipient.id),
        "group_id": str(household.group.id),
        "content": {"title": "First steps", "child_name": "Maya"},
    }
    response = api.simulate_post(NOTIFICATIONS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json["jobId"]


def detail(api, headers, job_id) -> dict:
    response = api.simulate_get(job_path(job_id), headers=headers)
    assert response.status_code == 200, response.text
    return response.json


@pytest.fixture
def alices_job(api, tokens) -> str:
    """The id of a queued email job Alice sent (no worker runs)."""
    response = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=tokens.alice)
    assert response.status_code == 202, response.text
    return response.json["jobId"]


# --- a job, and who may see it -------------------------------------------------------------


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
    alice = User.get_by_id(tokens.alice_id)
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
    alice = User.get_by_id(tokens.alice_id)
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


# --- the detail of a job -------------------------------------------------------------------


def test_processing_time_runs_from_the_claim_to_the_finish(api, tokens):
    household = family(tokens.alice_id)
    claimed = utcnow() - timedelta(minutes=5)
    job = job_row(
        household.owner.id,
        status=JobStatus.SENT,
        claimed_at=claimed,
        processed_at=claimed + timedelta(seconds=1, milliseconds=234),
    )

    assert detail(api, tokens.alice, job.id)["job"]["processing_time_ms"] == 1234


def test_a_job_never_claimed_has_no_processing_time(api, tokens):
    job = job_row(
        family(tokens.alice_id).owner.id, status=JobStatus.CANCELLED, processed_at=utcnow()
    )

    assert detail(api, tokens.alice, job.id)["job"]["processing_time_ms"] is None


@pytest.mark.parametrize(
    ("scheduled_in", "until_ms"),
    [(timedelta(hours=-1), -HOUR_MS), (timedelta(hours=1), HOUR_MS)],
    ids=["due an hour ago: negative", "due in an hour: positive"],
)
def test_time_until_scheduled_counts_down_to_the_scheduled_time(
    settings, stub_broker, tokens, scheduled_in, until_ms
):
    # Given an API whose clock reads NOW, and a job scheduled an hour from NOW (or before it)
    api = testing.TestClient(create_app(settings, broker=stub_broker, clock=lambda: NOW))
    job = job_row(
        family(tokens.alice_id).owner.id,
        status=JobStatus.PENDING,
        scheduled_for=NOW + scheduled_in,
    )

    until = detail(api, tokens.alice, job.id)["job"]["time_until_scheduled_ms"]

    assert until == until_ms


def test_a_notification_retried_once_then_sent_shows_its_retry_its_message_id_and_both_attempts(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    household = family(tokens.alice_id)
    sendgrid.script(Reply(503, body={"errors": [{"message": "try later"}]}))

    job_id = notify(api, tokens.alice, household)
    drain(stub_broker, stub_worker)

    body = detail(api, tokens.alice, job_id)
    job = body["job"]
    _, delivered = sendgrid.wait_for_requests(2)
    assert job["status"] == "sent"
    assert job["retry_count"] == 1
    assert job["message_id"] == delivered.message_id
    assert job["failure_reason"] is None
    assert job["processing_time_ms"] >= 0
    assert body["recipient"] == {
        "id": str(household.recipient.id),
        "name": household.recipient.name,
        "relationship": household.recipient.relationship,
    }
    assert [(log["attempt"], log["status"]) for log in body["delivery_logs"]] == [
        (1, "transient_failure"),
        (2, "sent"),
    ]
    assert "503" in body["delivery_logs"][0]["error"]
    assert body["delivery_logs"][1]["provider_message_id"] == delivered.message_id


def test_a_notification_refused_by_the_provider_shows_why_it_failed(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    sendgrid.script(Reply(400, body={"errors": [{"message": "Does not contain a valid address"}]}))

    job_id = notify(api, tokens.alice, family(tokens.alice_id))
    drain(stub_broker, stub_worker)

    job = detail(api, tokens.alice, job_id)["job"]
    assert job["status"] == "failed"
    assert job["retry_count"] == 0
    assert job["message_id"] is None
    assert "valid address" in job["failure_reason"]


def test_delivery_logs_come_in_attempt_order_whatever_order_they_were_written_in(api, tokens):
    job = notification_job(family(tokens.alice_id), status=JobStatus.SENT)
    written = utcnow()
    for attempt, seconds_later in ((3, 0), (1, 2), (2, 1)):
        DeliveryLog.create(
            id=uuid.uuid4(),
            job=job.id,
            attempt=attempt,
            provider="sendgrid",
            status="sent" if attempt == 3 else "transient_failure",
            created_at=written + timedelta(seconds=seconds_later),
        )

    logs = detail(api, tokens.alice, job.id)["delivery_logs"]

    assert [log["attempt"] for log in logs] == [1, 2, 3]


@pytest.mark.parametrize(
    ("make_job", "expected"),
    [
        (
            notification_job,
            lambda household: {
                "id": str(household.recipient.id),
                "name": "Nana",
                "relationship": "grandmother",
            },
        ),
        (lambda household: job_row(household.owner.id), lambda household: None),
    ],
    ids=["a notification: its recipient", "an ad-hoc email: null"],
)
def test_the_recipient_is_named_for_a_notification_and_null_for_an_ad_hoc_email(
    api, tokens, make_job, expected
):
    household = family(tokens.alice_id)
    job = make_job(household)

    assert detail(api, tokens.alice, job.id)["recipient"] == expected(household)
