"""Delivering email jobs through the actors: a StubBroker, a real Worker, the fake SendGrid and
a real database (SQLite and PostgreSQL in turn)."""

from __future__ import annotations

import time

import dramatiq
import pytest

from tests.support.fakes.sendgrid import Reply
from tests.support.jobs import email_job, logs_of, reload
from tests.support.waiting import drain
from tribe_shared.contract import Actor, DeliveryStatus, JobStatus

SEND_EMAIL_URL = "/api/notifications/send-email"
SEND_BULK_EMAIL_URL = "/api/notifications/send-bulk-email"
WELCOME = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}


def post_email(api, tokens, body=WELCOME) -> str:
    response = api.simulate_post(SEND_EMAIL_URL, json=body, headers=tokens.service)
    assert response.status_code == 202, response.text
    return response.json["jobId"]


def test_sent_job_records_the_message_id_and_one_delivery_log(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given an email accepted by the API
    job_id = post_email(api, tokens)

    # When the worker has processed its message
    drain(stub_broker, stub_worker)

    # Then SendGrid got it and the job says so
    (request,) = sendgrid.wait_for_requests(1)
    assert request.job_ids == [job_id]
    assert request.recipients == ["nana@example.com"]
    job = reload(job_id)
    assert job.status == JobStatus.SENT
    assert job.message_id == request.message_id
    assert job.processed_at is not None
    assert job.retry_count == 0
    (log,) = logs_of(job_id)
    assert log.attempt == 1
    assert log.provider == "sendgrid"
    assert log.status == DeliveryStatus.SENT
    assert log.provider_message_id == request.message_id
    assert log.duration_ms is not None and log.duration_ms >= 0
    assert log.error is None


def test_a_message_delivered_twice_sends_its_email_once(
    worker_app, stub_broker, stub_worker, sendgrid
):
    # Given a queued job whose message the broker delivers twice
    job = email_job()
    message = worker_app.actors[Actor.SEND_EMAIL].message(str(job.id))
    stub_broker.enqueue(message)
    stub_broker.enqueue(message)

    drain(stub_broker, stub_worker)

    assert len(sendgrid.wait_for_requests(1)) == 1
    assert reload(job).status == JobStatus.SENT
    assert len(logs_of(job)) == 1


def test_a_cancelled_job_is_never_sent_even_if_its_message_is_queued(
    api, tokens, worker_app, stub_broker, sendgrid
):
    # Given an accepted email whose message waits on the broker
    job_id = post_email(api, tokens)
    assert reload(job_id).status == JobStatus.QUEUED
    assert stub_broker.queues["emails"].qsize() == 1
    # ... and the job is cancelled before any worker runs
    job = reload(job_id)
    job.status = JobStatus.CANCELLED
    job.save()

    # When a worker processes the message
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        drain(stub_broker, worker)
    finally:
        worker.stop()

    # Then nothing was sent
    assert sendgrid.requests == []
    assert reload(job_id).status == JobStatus.CANCELLED
    assert logs_of(job_id) == []


def test_a_server_error_is_retried_and_the_job_is_sent_on_the_second_attempt(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    sendgrid.script(Reply(500))

    job_id = post_email(api, tokens)
    drain(stub_broker, stub_worker)

    first, second = sendgrid.wait_for_requests(2)
    assert first.message_id is None
    job = reload(job_id)
    assert job.status == JobStatus.SENT
    assert job.message_id == second.message_id
    assert job.retry_count == 1
    assert job.failure_reason is None
    assert [(log.attempt, log.status) for log in logs_of(job_id)] == [
        (1, DeliveryStatus.TRANSIENT_FAILURE),
        (2, DeliveryStatus.SENT),
    ]
    assert "500" in logs_of(job_id)[0].error
    assert stub_broker.dead_letters == []


def test_an_invalid_address_fails_the_job_at_once_without_a_retry(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    sendgrid.script(Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]}))

    job_id = post_email(api, tokens)
    drain(stub_broker, stub_worker)

    assert len(sendgrid.wait_for_requests(1)) == 1
    job = reload(job_id)
    assert job.status == JobStatus.FAILED
    assert "400" in job.failure_reason
    assert "valid address" in job.failure_reason
    assert job.retry_count == 0
    assert job.processed_at is not None
    (log,) = logs_of(job_id)
    assert log.status == DeliveryStatus.PERMANENT_FAILURE


def test_a_job_failing_transiently_forever_fails_after_its_retries_and_is_dead_lettered(
    api, tokens, settings, stub_broker, stub_worker, sendgrid
):
    attempts = settings.max_retries + 1
    sendgrid.script(*[Reply(500)] * attempts)

    job_id = post_email(api, tokens)
    drain(stub_broker, stub_worker)

    assert len(sendgrid.wait_for_requests(attempts)) == attempts
    job = reload(job_id)
    assert job.status == JobStatus.FAILED
    assert job.failure_reason.startswith("Retries exhausted")
    assert "500" in job.failure_reason
    assert job.processed_at is not None
    assert [log.status for log in logs_of(job_id)] == [DeliveryStatus.TRANSIENT_FAILURE] * attempts
    (dead,) = stub_broker.dead_letters
    assert dead.actor_name == Actor.SEND_EMAIL
    assert list(dead.args) == [job_id]


def test_a_rate_limited_email_is_retried_no_sooner_than_sendgrids_reset_time(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # X-RateLimit-Reset is whole epoch seconds; +2 puts it at least one second ahead.
    reset = int(time.time()) + 2
    sendgrid.script(Reply(429, headers={"X-RateLimit-Reset": str(reset)}))

    job_id = post_email(api, tokens)
    drain(stub_broker, stub_worker)

    limited, retried = sendgrid.wait_for_requests(2)
    assert limited.message_id is None
    assert retried.received_at >= reset
    job = reload(job_id)
    assert job.status == JobStatus.SENT
    assert job.message_id == retried.message_id
    assert job.retry_count == 1


def test_identical_bulk_emails_go_out_as_one_request_and_each_job_gets_its_own_log(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    addresses = ["nana@example.com", "papa@example.com", "aunt.may@example.com"]
    body = {"emails": [{**WELCOME, "to": to} for to in addresses]}

    response = api.simulate_post(SEND_BULK_EMAIL_URL, json=body, headers=tokens.service)
    assert response.status_code == 202, response.text
    job_ids = [job["jobId"] for job in response.json["jobs"]]
    drain(stub_broker, stub_worker)

    (request,) = sendgrid.wait_for_requests(1)
    assert sorted(request.job_ids) == sorted(job_ids)
    assert sorted(request.recipients) == sorted(addresses)
    for job_id in job_ids:
        job = reload(job_id)
        assert job.status == JobStatus.SENT
        assert job.message_id == request.message_id
        (log,) = logs_of(job_id)
        assert (log.attempt, log.status) == (1, DeliveryStatus.SENT)


def test_an_email_that_cannot_be_rendered_fails_permanently_without_a_request(
    worker_app, stub_broker, stub_worker, sendgrid
):
    job = email_job(content={"type": "newsletter", "subject": None, "templateData": {}})

    worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))
    drain(stub_broker, stub_worker)

    assert sendgrid.requests == []
    job = reload(job)
    assert job.status == JobStatus.FAILED
    assert "newsletter" in job.failure_reason
    (log,) = logs_of(job)
    assert log.status == DeliveryStatus.PERMANENT_FAILURE
    assert stub_broker.dead_letters == []


@pytest.mark.parametrize("status", [JobStatus.SENT, JobStatus.FAILED, JobStatus.PROCESSING])
def test_a_message_for_a_job_no_longer_waiting_sends_nothing(
    worker_app, stub_broker, stub_worker, sendgrid, status
):
    job = email_job(status=status)

    worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))
    drain(stub_broker, stub_worker)

    assert sendgrid.requests == []
    assert reload(job).status == status
