"""POST /api/jobs/{id}/retry: a failed job goes back to the queue with a fresh retry budget, for
its owner (or the service role); its dead-lettered message is removed so nothing is sent twice."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import redis
from falcon import testing

from tests.support.fakes.sendgrid import Reply
from tests.support.family import family
from tests.support.http_assertions import assert_json_error
from tests.support.jobs import reload
from tests.support.waiting import drain, wait_until
from tests.support.workers import running_worker
from tribe_api.app import create_app
from tribe_shared.contract import JobStatus, Queue
from tribe_shared.models import NotificationJob
from tribe_shared.redis_broker import build_broker
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}


@pytest.fixture(autouse=True)
def nana_is_alices(db_url, tokens):
    """Alice's recipient Nana: a user may email only their own recipients."""
    return family(tokens.alice_id, email=EMAIL["to"])


INVALID_ADDRESS = Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]})


def retry_path(job_id) -> str:
    return f"/api/jobs/{job_id}/retry"


def post_email(api, headers) -> str:
    response = api.simulate_post("/api/notifications/send-email", json=EMAIL, headers=headers)
    assert response.status_code == 202, response.text
    return response.json["jobId"]


def failed_job(api, headers, broker, worker, sendgrid, *replies) -> str:
    """An email the worker failed: SendGrid answered ``replies`` (one permanent, or too many
    transient ones)."""
    sendgrid.script(*replies)
    job_id = post_email(api, headers)
    drain(broker, worker)
    assert reload(job_id).status == JobStatus.FAILED
    return job_id


def exhausted_replies(settings) -> list[Reply]:
    return [Reply(500)] * (settings.max_retries + 1)


@pytest.mark.parametrize("cause", ["permanent", "exhausted"])
def test_a_failed_job_is_queued_again_with_a_fresh_retry_budget_and_then_sent(
    api, tokens, settings, stub_broker, stub_worker, sendgrid, cause
):
    replies = [INVALID_ADDRESS] if cause == "permanent" else exhausted_replies(settings)
    job_id = failed_job(api, tokens.alice, stub_broker, stub_worker, sendgrid, *replies)
    requests_before = len(sendgrid.requests)

    response = api.simulate_post(retry_path(job_id), headers=tokens.alice)

    assert response.status_code == 202, response.text
    assert response.json["jobId"] == job_id
    assert response.json["status"] == JobStatus.QUEUED
    job = response.json["job"]
    assert (job["status"], job["retry_count"], job["failure_reason"]) == ("queued", 0, None)
    assert job["processed_at"] is None
    drain(stub_broker, stub_worker)
    assert len(sendgrid.wait_for_requests(requests_before + 1)) == requests_before + 1
    sent = reload(job_id)
    assert sent.status == JobStatus.SENT
    assert sent.message_id == sendgrid.requests[-1].message_id
    assert sent.retry_count == 0


@pytest.mark.parametrize(
    "status",
    [
        JobStatus.PENDING,
        JobStatus.QUEUED,
        JobStatus.PROCESSING,
        JobStatus.SENT,
        JobStatus.CANCELLED,
        JobStatus.SKIPPED,
    ],
)
def test_only_a_failed_job_can_be_retried_any_other_is_a_409_naming_its_status(
    api, tokens, stub_broker, status
):
    job_id = post_email(api, tokens.alice)
    NotificationJob.update(status=status).where(NotificationJob.id == job_id).execute()
    messages_before = stub_broker.queues[Queue.EMAILS].qsize()

    response = api.simulate_post(retry_path(job_id), headers=tokens.alice)

    body = assert_json_error(response, 409)
    assert status in body["description"]
    assert reload(job_id).status == status
    assert stub_broker.queues[Queue.EMAILS].qsize() == messages_before


def test_a_failed_job_whose_content_retention_scrubbed_is_a_409_and_stays_failed(
    api, tokens, stub_broker
):
    # Given a failed job that retention scrubbed (no address, no content left to send)
    job_id = post_email(api, tokens.alice)
    NotificationJob.update(
        status=JobStatus.FAILED, to_email=None, scrubbed_at=NotificationJob.created_at
    ).where(NotificationJob.id == job_id).execute()
    messages_before = stub_broker.queues[Queue.EMAILS].qsize()

    response = api.simulate_post(retry_path(job_id), headers=tokens.alice)

    body = assert_json_error(response, 409)
    assert "scrubbed" in body["description"]
    assert reload(job_id).status == JobStatus.FAILED
    assert stub_broker.queues[Queue.EMAILS].qsize() == messages_before


def test_another_users_failed_job_is_a_404_and_stays_failed(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    job_id = failed_job(api, tokens.alice, stub_broker, stub_worker, sendgrid, INVALID_ADDRESS)

    unknown_id = str(uuid.uuid4())
    response = api.simulate_post(retry_path(job_id), headers=tokens.bob)
    unknown = api.simulate_post(retry_path(unknown_id), headers=tokens.bob)

    # Exactly what a made-up id gets
    assert_json_error(response, 404)
    assert response.text == unknown.text.replace(unknown_id, job_id)
    job = reload(job_id)
    assert job.status == JobStatus.FAILED
    assert job.failure_reason is not None


def test_the_service_role_may_retry_anyones_failed_job(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    job_id = failed_job(api, tokens.alice, stub_broker, stub_worker, sendgrid, INVALID_ADDRESS)

    response = api.simulate_post(retry_path(job_id), headers=tokens.service)

    assert response.status_code == 202, response.text
    drain(stub_broker, stub_worker)
    assert reload(job_id).status == JobStatus.SENT


# --- with the real Redis broker: the dead letter -----------------------------------------


@pytest.fixture
def redis_settings(settings, redis_url):
    """Settings of a Redis deployment under this test's own namespace; one retry only."""
    return replace(settings, redis_url=redis_url, max_retries=1)


@pytest.fixture
def redis_broker(redis_settings):
    broker = build_broker(redis_settings)
    yield broker
    broker.close()


@pytest.mark.redis
def test_retrying_an_exhausted_job_removes_its_dead_letter_from_redis(
    redis_settings, redis_broker, sendgrid, tokens
):
    namespace = redis_settings.redis_namespace
    provider = SendGridProvider(redis_settings.sendgrid_api_key, sendgrid.url, timeout=2)
    build_worker(redis_settings, broker=redis_broker, provider=provider)
    api = testing.TestClient(create_app(redis_settings, broker=redis_broker))
    client = redis.Redis.from_url(redis_settings.redis_url)
    dead_ids = f"{namespace}:{Queue.EMAILS}.XQ"
    dead_messages = f"{dead_ids}.msgs"

    with running_worker(redis_broker):
        # Given a job whose retries ran out: failed, its message dead-lettered in Redis
        sendgrid.script(*exhausted_replies(redis_settings))
        job_id = post_email(api, tokens.alice)
        wait_until(lambda: reload(job_id).status == JobStatus.FAILED, what="the job to fail")
        dead_letter = reload(job_id).dead_letter
        assert dead_letter is not None and dead_letter.startswith(f"{Queue.EMAILS}:")
        redis_id = dead_letter.rsplit(":", 1)[1]
        wait_until(lambda: client.zscore(dead_ids, redis_id) is not None, what="a dead letter")
        assert client.hexists(dead_messages, redis_id)

        # When it is retried by hand
        response = api.simulate_post(retry_path(job_id), headers=tokens.alice)

        # Then the dead letter is gone, and the job is sent once
        assert response.status_code == 202, response.text
        assert client.zscore(dead_ids, redis_id) is None
        assert not client.hexists(dead_messages, redis_id)
        assert reload(job_id).dead_letter is None
        wait_until(lambda: reload(job_id).status == JobStatus.SENT, what="the job to be sent")

    attempts = redis_settings.max_retries + 1
    assert len(sendgrid.requests) == attempts + 1
    assert [r.job_ids for r in sendgrid.requests] == [[job_id]] * (attempts + 1)
    assert client.zcard(dead_ids) == 0
    client.close()
