"""Optional OpenTelemetry tracing: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` one trace spans the API
request, the broker hop (the context travels in the message's options) and the worker's provider
call, exported by the official OTLP/HTTP exporter to a local receiver; without it no tracer, no
exporter, no middleware and no context in messages."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from falcon import testing

from tests.support.fakes.otlp import OtlpReceiver
from tests.support.waiting import drain
from tests.support.workers import running_worker
from tribe_api.app import create_app
from tribe_shared import tracing
from tribe_shared.contract import Queue
from tribe_shared.models import utcnow
from tribe_shared.outbox import JobRef, envelopes_for
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

SEND_EMAIL = "/api/notifications/send-email"
EMAIL = {"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}}
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind numbers


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    fake = OtlpReceiver().start()
    provider = tracing.configure_tracing(fake.url, "tribe-test")
    yield fake, provider
    tracing.disable_tracing()
    fake.stop()


@pytest.fixture
def traced_system(receiver, settings, sendgrid):
    """The API and a worker built while tracing is on, on a stub broker of their own."""
    broker = StubBroker(fail_fast_default=False)
    broker.emit_after("process_boot")
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    build_worker(settings, broker=broker, provider=provider)
    api = testing.TestClient(create_app(settings, broker=broker))
    with running_worker(broker) as worker:
        yield api, broker, worker
    broker.close()


def test_one_trace_spans_the_request_the_broker_hop_and_the_provider_call(
    traced_system, receiver, tokens
):
    api, broker, worker = traced_system
    fake, provider = receiver
    headers = {**tokens.service, "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}

    # When a request accepts an email and the worker sends it
    response = api.simulate_post(SEND_EMAIL, json=EMAIL, headers=headers)
    assert response.status_code == 202, response.text
    drain(broker, worker, Queue.EMAILS)
    provider.force_flush()

    # Then the client's trace goes on: request → hand-over → processing → provider call
    request = fake.wait_for("POST /api/notifications/send-email")
    hand_over = fake.wait_for("send jobs")
    processing = fake.wait_for("process send_email")
    call = fake.wait_for("sendgrid send")
    assert {s.trace_id for s in (request, hand_over, processing, call)} == {CLIENT_TRACE}
    assert request.parent_span_id == CLIENT_SPAN and request.kind == SERVER
    assert hand_over.parent_span_id == request.span_id and hand_over.kind == PRODUCER
    assert processing.parent_span_id == hand_over.span_id and processing.kind == CONSUMER
    assert call.parent_span_id == processing.span_id and call.kind == CLIENT
    assert request.attributes["http.route"] == SEND_EMAIL
    assert request.attributes["http.response.status_code"] == 202
    assert request.attributes["tribe.request_id"] == response.headers["X-Request-ID"]
    assert request.service == "tribe-test"


def test_without_an_endpoint_no_exporter_loads_no_span_is_made_and_no_context_travels(
    tmp_path,
):
    # Given the API and a worker built in a fresh process with tracing not configured
    script = f"""
import sys
from dramatiq.brokers.stub import StubBroker
from falcon import testing
from tribe_shared import db, tracing
from tribe_shared.migrate import apply_migrations
from tribe_shared.settings import Settings
from tribe_api.app import create_app
from tribe_api.auth import mint_token
from tribe_worker.worker import build_worker

settings = Settings(app_env="test", database_url="sqlite:///{tmp_path}/t.db")
assert tracing.configure_tracing(settings.otel_exporter_otlp_endpoint, "x") is None
database = db.bind(settings.database_url)
with database.connection_context():
    apply_migrations(database)
broker = StubBroker()
build_worker(settings, broker=broker)
api = testing.TestClient(create_app(settings, broker=broker))
headers = {{"Authorization": "Bearer " + mint_token(settings.jwt_secret, role="service_role")}}
body = {{"to": "a@example.com", "type": "system", "templateData": {{}}}}
response = api.simulate_post("/api/notifications/send-email", json=body, headers=headers)
assert response.status_code == 202
(message,) = broker.queues["emails"].queue
assert not tracing.enabled()
assert not any(type(m).__name__ == "Tracing" for m in broker.middleware)
# (redis-py imports parts of the SDK for its own optional instrumentation; no exporter)
print(sorted(m for m in sys.modules if m.startswith("opentelemetry.exporter")))
print(__import__("dramatiq").Message.decode(message).options)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )

    # Then no exporter was loaded and the message carries no trace context
    assert result.returncode == 0, result.stderr
    modules, options = result.stdout.strip().splitlines()[-2:]
    assert modules == "[]"
    assert tracing.MESSAGE_OPTION not in options


def test_a_message_sent_while_tracing_is_on_carries_the_trace_context(receiver):
    with tracing.span("a request", kind="server"):
        outbox_messages = _messages_sent_by_the_outbox()

    (message,) = outbox_messages
    assert message.options[tracing.MESSAGE_OPTION]["traceparent"].startswith("00-")


def _messages_sent_by_the_outbox() -> list[dramatiq.Message]:

    job = JobRef(uuid.uuid4(), "email", "normal", utcnow())
    return [envelope.message for envelope in envelopes_for([job], utcnow())]
