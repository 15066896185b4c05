"""GET /api/jobs/{id} complete: timings, retries, the provider's message id, why it failed, the
recipient and every delivery attempt in order."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.fakes.sendgrid import Reply
from tests.support.family import family, notification_job
from tests.support.family_api import NOTIFICATIONS, job_path, job_row
from tests.support.waiting import drain
from tribe_shared.contract import JobStatus
from tribe_shared.models import DeliveryLog, utcnow

HOUR_MS = 3_600_000
#: How far the API's clock may have moved between storing a job and answering for it.
SLACK_MS = 60_000


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
    ("scheduled_in", "low", "high"),
    [
        (timedelta(hours=-1), -HOUR_MS - SLACK_MS, -HOUR_MS),
        (timedelta(hours=1), HOUR_MS - SLACK_MS, HOUR_MS),
    ],
    ids=["due an hour ago: negative", "due in an hour: positive"],
)
def test_time_until_scheduled_counts_down_to_the_scheduled_time(
    api, tokens, scheduled_in, low, high
):
    job = job_row(
        family(tokens.alice_id).owner.id,
        status=JobStatus.PENDING,
        scheduled_for=utcnow() + scheduled_in,
    )

    until = detail(api, tokens.alice, job.id)["job"]["time_until_scheduled_ms"]

    assert low <= until <= high


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
