"""Twilio's calls pass gates of their own, shared through the real Redis: its own rate limit and
a circuit breaker apart from the email provider's, so a Twilio outage never holds email back
(nor a SendGrid outage texts)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.fakes.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SMS_FROM,
    error,
)
from tests.support.family import family, notification_job
from tests.support.jobs import email_job, reload
from tests.support.waiting import wait_until
from tests.support.workers import running_worker
from tribe_shared.circuit import CircuitState
from tribe_shared.contract import Actor, DeliveryMethod, JobStatus
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

RESET_SECONDS = 1.5
PHONE = "+447700900123"


@pytest.fixture
def texting_worker(settings, stub_broker, client, sendgrid, twilio):
    texting = replace(
        settings,
        circuit_reset_seconds=RESET_SECONDS,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_sms_from=SMS_FROM,
        twilio_api_base_url=twilio.url,
    )
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(texting, broker=stub_broker, redis_client=client, provider=provider)


def text_job():
    return notification_job(family(phone=PHONE), method=DeliveryMethod.SMS)


def test_twilio_server_errors_open_the_sms_circuit_and_leave_email_flowing(
    texting_worker, settings, stub_broker, sendgrid, twilio
):
    sms_circuit = texting_worker.delivery.sms_gates.circuit
    email_circuit = texting_worker.delivery.gates.circuit
    threshold = settings.circuit_failure_threshold
    twilio.script(*[error(500, 20500)] * threshold)
    texts = [text_job() for _ in range(threshold)]
    for job in texts:
        texting_worker.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))

    with running_worker(stub_broker, threads=1):
        # Given as many Twilio server errors in a row as the threshold
        twilio.wait_for_requests(threshold)
        wait_until(lambda: sms_circuit.status().state == CircuitState.OPEN, what="sms circuit")

        # When an email is sent meanwhile, Then it goes out: the email circuit never opened
        email = email_job()
        texting_worker.actors[Actor.SEND_EMAIL].send(str(email.id))
        wait_until(lambda: reload(email).status == JobStatus.SENT, what="the email sent")
        assert email_circuit.status().state == CircuitState.CLOSED

        # ... and once the SMS circuit lets a probe through, every text is sent
        wait_until(
            lambda: all(reload(j).status == JobStatus.SENT for j in texts),
            what="every text sent",
            timeout=30,
        )
    assert sms_circuit.status().state == CircuitState.CLOSED
    assert sum(reload(j).retry_count for j in texts) == threshold


def test_a_refused_twilio_account_pauses_texts_without_failing_them(
    texting_worker, stub_broker, twilio
):
    twilio.script(error(401, 20003, "Authenticate"))
    job = text_job()
    texting_worker.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))

    with running_worker(stub_broker, threads=1):
        wait_until(lambda: reload(job).status == JobStatus.SENT, what="sent after the pause")

    sent = reload(job)
    assert sent.retry_count == 0
    assert [r.status for r in twilio.requests] == [401, 201]
