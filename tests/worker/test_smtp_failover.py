"""The SMTP relay as the email provider (``EMAIL_PROVIDER=smtp``), and as SendGrid's failover
while its circuit is open (``EMAIL_FAILOVER_TO_SMTP``): the real gates in Redis, the fake
SendGrid, a local SMTP relay, a StubBroker and a real Worker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import dramatiq
import pytest

from tests.support.fakes.smtp import FakeSmtp
from tests.support.jobs import email_job, logs_of, reload
from tests.support.waiting import drain
from tribe_shared.circuit import CircuitState
from tribe_shared.contract import Actor, DeliveryStatus, JobStatus
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.emails.smtp import SmtpProvider
from tribe_worker.metrics import email_failovers
from tribe_worker.worker import build_worker, email_provider, failover_provider


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


def smtp_settings(settings, relay, **changes):
    return replace(
        settings, smtp_host=relay.host, smtp_port=relay.port, smtp_starttls=False, **changes
    )


@pytest.fixture
def worker_app(settings, stub_broker, client, sendgrid, relay):
    """SendGrid first, the relay while its circuit is open; the gates in the real Redis."""
    failover = smtp_settings(settings, relay, email_failover_to_smtp=True)
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(failover, broker=stub_broker, redis_client=client, provider=provider)


def send(worker_app, job) -> None:
    worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))


def test_while_sendgrids_circuit_is_open_emails_go_through_the_smtp_relay(
    worker_app, stub_broker, stub_worker, sendgrid, relay
):
    # Given SendGrid's circuit open (a 429 asked everyone to wait)
    circuit = worker_app.delivery.gates.circuit
    circuit.hold(60)
    assert circuit.status().state == CircuitState.OPEN
    before = email_failovers.labels(provider="smtp")._value.get()

    # When an email is sent
    job = email_job(to="nana@example.com")
    send(worker_app, job)
    drain(stub_broker, stub_worker)

    # Then the relay delivered it at once, and SendGrid was not asked
    assert sendgrid.requests == []
    (message,) = relay.messages
    assert message["To"] == "nana@example.com"
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert job.attempts == 1 and job.retry_count == 0
    ((log),) = logs_of(job)
    assert (log.provider, log.status) == ("smtp", DeliveryStatus.SENT)
    assert email_failovers.labels(provider="smtp")._value.get() == before + 1
    # And SendGrid's circuit is still its own: open until it recovers
    assert circuit.status().state == CircuitState.OPEN


def test_with_the_circuit_closed_sendgrid_sends_and_the_relay_is_not_used(
    worker_app, stub_broker, stub_worker, sendgrid, relay
):
    job = email_job()
    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert len(sendgrid.requests) == 1
    assert relay.messages == []
    assert [log.provider for log in logs_of(job)] == ["sendgrid"]


def test_a_relay_failing_too_during_failover_retries_the_job(
    worker_app, stub_broker, stub_worker, sendgrid, relay
):
    # Given SendGrid's circuit open and the relay asking to try later, once
    worker_app.delivery.gates.circuit.hold(60)
    relay.data_reply = "451 4.3.0 Try again later"
    job = email_job()
    stub_broker.add_middleware(_ReplyAfterFirstAttempt(relay))

    # When it is sent
    send(worker_app, job)
    drain(stub_broker, stub_worker)

    # Then the first try failed transiently, and the retry went through the relay
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert [(log.provider, log.status) for log in logs_of(job)] == [
        ("smtp", DeliveryStatus.TRANSIENT_FAILURE),
        ("smtp", DeliveryStatus.SENT),
    ]
    assert sendgrid.requests == []


class _ReplyAfterFirstAttempt(dramatiq.Middleware):
    """Lets the relay accept once the first attempt has failed."""

    def __init__(self, relay):
        self._relay = relay

    def after_process_message(self, broker, message, *, result=None, exception=None):
        self._relay.data_reply = None


def test_failover_is_off_by_default_and_smtp_can_be_the_provider(settings, relay):
    assert settings.email_failover_to_smtp is False
    assert failover_provider(settings, email_provider(settings)) is None

    smtp = smtp_settings(settings, relay, email_provider="smtp", email_failover_to_smtp=True)
    provider = email_provider(smtp)
    assert isinstance(provider, SmtpProvider)
    # SMTP as the provider has no failover to itself
    assert failover_provider(smtp, provider) is None


def test_smtp_as_the_provider_sends_through_the_gates(
    settings, stub_broker, client, relay, sendgrid
):
    smtp = smtp_settings(settings, relay, email_provider="smtp")
    app = build_worker(smtp, broker=stub_broker, redis_client=client)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        job = email_job()
        send(app, job)
        drain(stub_broker, worker)
    finally:
        worker.stop()

    assert reload(job).status == JobStatus.SENT
    assert len(relay.messages) == 1 and sendgrid.requests == []
    assert [log.provider for log in logs_of(job)] == ["smtp"]
