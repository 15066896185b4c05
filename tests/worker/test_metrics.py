"""The worker's own metrics (``tribe_*``), each counted by the behaviour that causes it: a
StubBroker, a real Worker, the fake SendGrid and a real database, read from prometheus-client's
default registry (no exposition server). Counters live for the whole test run, so each test
compares what it caused with what was there before."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support.clocks import RecordingSleep
from tests.support.digests import post_update, schedule_for, tick
from tests.support.fakes.sendgrid import Reply
from tests.support.family import family, notification_job
from tests.support.jobs import email_job, reload
from tests.support.metrics import readings
from tests.support.waiting import drain, wait_until
from tests.support.workers import running_worker
from tribe_shared.contract import Actor, JobStatus
from tribe_shared.models import utcnow
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

SENT = {"provider": "sendgrid", "outcome": "sent"}
TRANSIENT = {"provider": "sendgrid", "outcome": "transient"}
PERMANENT = {"provider": "sendgrid", "outcome": "permanent"}


def send(worker_app, *jobs) -> None:
    for job in jobs:
        worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))


def test_a_sent_email_counts_one_provider_call_sent_its_latency_and_one_job_finished_sent(
    worker_app, stub_broker, stub_worker, sendgrid
):
    r = readings(
        ("tribe_provider_calls_total", SENT),
        ("tribe_provider_call_duration_seconds_count", {"provider": "sendgrid"}),
        ("tribe_jobs_finished_total", {"kind": "email", "status": "sent"}),
        ("tribe_job_retries_total", {"kind": "email"}),
    )
    job = email_job()

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.SENT
    assert r.change("tribe_provider_calls_total", **SENT) == 1
    assert r.change("tribe_provider_call_duration_seconds_count", provider="sendgrid") == 1
    assert r.change("tribe_jobs_finished_total", kind="email", status="sent") == 1
    assert r.change("tribe_job_retries_total", kind="email") == 0


def test_a_server_error_counts_a_transient_call_and_a_retry_then_the_send(
    worker_app, stub_broker, stub_worker, sendgrid
):
    r = readings(
        ("tribe_provider_calls_total", SENT),
        ("tribe_provider_calls_total", TRANSIENT),
        ("tribe_job_retries_total", {"kind": "email"}),
        ("tribe_jobs_finished_total", {"kind": "email", "status": "sent"}),
    )
    sendgrid.script(Reply(500))
    job = email_job()

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.SENT
    assert r.change("tribe_provider_calls_total", **TRANSIENT) == 1
    assert r.change("tribe_job_retries_total", kind="email") == 1
    assert r.change("tribe_provider_calls_total", **SENT) == 1
    assert r.change("tribe_jobs_finished_total", kind="email", status="sent") == 1


def test_an_invalid_address_counts_a_permanent_call_and_a_failed_job_without_a_retry(
    worker_app, stub_broker, stub_worker, sendgrid
):
    r = readings(
        ("tribe_provider_calls_total", PERMANENT),
        ("tribe_job_retries_total", {"kind": "email"}),
        ("tribe_jobs_finished_total", {"kind": "email", "status": "failed"}),
    )
    sendgrid.script(Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]}))
    job = email_job()

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.FAILED
    assert r.change("tribe_provider_calls_total", **PERMANENT) == 1
    assert r.change("tribe_job_retries_total", kind="email") == 0
    assert r.change("tribe_jobs_finished_total", kind="email", status="failed") == 1


def test_a_job_whose_retries_run_out_counts_its_retries_and_then_one_failed_job(
    settings, worker_app, stub_broker, stub_worker, sendgrid
):
    attempts = settings.max_retries + 1
    r = readings(
        ("tribe_provider_calls_total", TRANSIENT),
        ("tribe_job_retries_total", {"kind": "email"}),
        ("tribe_jobs_finished_total", {"kind": "email", "status": "failed"}),
    )
    sendgrid.script(*[Reply(500)] * attempts)
    job = email_job()

    send(worker_app, job)
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.FAILED
    assert r.change("tribe_provider_calls_total", **TRANSIENT) == attempts
    # The last transient failure is not retried: the job is failed instead.
    assert r.change("tribe_job_retries_total", kind="email") == settings.max_retries
    assert r.change("tribe_jobs_finished_total", kind="email", status="failed") == 1


def test_an_open_circuit_counts_its_transitions_and_the_deferral_it_caused(
    settings, stub_broker, client, sendgrid
):
    # Given a worker whose circuit opens at the first transient failure and probes 0.2 s later
    quick = replace(settings, circuit_failure_threshold=1, circuit_reset_seconds=0.2)
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    app = build_worker(quick, broker=stub_broker, redis_client=client, provider=provider)
    r = readings(
        ("tribe_circuit_transitions_total", {"to_state": "open"}),
        ("tribe_circuit_transitions_total", {"to_state": "half_open"}),
        ("tribe_circuit_transitions_total", {"to_state": "closed"}),
        ("tribe_gate_deferrals_total", {"gate": "circuit"}),
        ("tribe_gate_deferrals_total", {"gate": "rate_limit"}),
    )
    sendgrid.script(Reply(500))
    job = email_job()

    # When the job fails once (opening the circuit), waits at the open circuit, then is sent
    with running_worker(stub_broker) as worker:
        send(app, job)
        drain(stub_broker, worker)
        wait_until(lambda: reload(job).status == JobStatus.SENT, what="the job to be sent")

    # Then the circuit went open, half-open (the probe) and closed once each
    assert r.change("tribe_circuit_transitions_total", to_state="open") == 1
    assert r.change("tribe_circuit_transitions_total", to_state="half_open") == 1
    assert r.change("tribe_circuit_transitions_total", to_state="closed") == 1
    # ... and the retry that came back while it was open was deferred at the circuit
    assert r.change("tribe_gate_deferrals_total", gate="circuit") >= 1
    assert r.change("tribe_gate_deferrals_total", gate="rate_limit") == 0


def test_a_send_held_at_the_rate_limit_counts_a_rate_limit_deferral(
    settings, stub_broker, client, sendgrid
):
    # Given a worker allowed one send every 5 seconds
    slow = replace(settings, email_rate_limit_per_second=0.2)
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    app = build_worker(
        slow, broker=stub_broker, redis_client=client, provider=provider, sleep=RecordingSleep()
    )
    r = readings(("tribe_gate_deferrals_total", {"gate": "rate_limit"}))
    first, second = email_job(), email_job(to="grandpa@example.com")

    # When two jobs come at once
    with running_worker(stub_broker, threads=1):
        send(app, first, second)

        # Then one is sent and the other deferred at the rate limit (longer than a worker waits)
        wait_until(
            lambda: r.change("tribe_gate_deferrals_total", gate="rate_limit") >= 1,
            what="a rate-limit deferral",
        )
    assert len(sendgrid.requests) == 1


@pytest.fixture
def fam(db_url):
    return family(email="nana@example.com")


def test_a_sent_digest_counts_as_sent_with_its_delivery_lag_and_an_empty_one_as_skipped(
    fam, stub_broker, stub_worker, sendgrid
):
    r = readings(
        ("tribe_digests_total", {"outcome": "sent"}),
        ("tribe_digests_total", {"outcome": "skipped"}),
        ("tribe_digest_delivery_lag_seconds_count", {}),
        ("tribe_digest_delivery_lag_seconds_sum", {}),
        ("tribe_jobs_finished_total", {"kind": "digest", "status": "sent"}),
        ("tribe_jobs_finished_total", {"kind": "digest", "status": "skipped"}),
        ("tribe_provider_calls_total", SENT),
    )
    now = utcnow()
    schedule = schedule_for(fam, now - timedelta(days=3))
    post_update(fam, now - timedelta(hours=1), title="Park day")

    # Given a digest with an update in its window: built and sent
    job = tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)
    assert reload(job).status == JobStatus.SENT

    # ... and the next one with nothing new: skipped
    empty = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)
    assert reload(empty).status == JobStatus.SKIPPED

    assert r.change("tribe_digests_total", outcome="sent") == 1
    assert r.change("tribe_digests_total", outcome="skipped") == 1
    assert r.change("tribe_jobs_finished_total", kind="digest", status="sent") == 1
    assert r.change("tribe_jobs_finished_total", kind="digest", status="skipped") == 1
    assert r.change("tribe_provider_calls_total", **SENT) == 1
    # The lag is the time from the digest's scheduled run (a minute before ``now``) to its send
    assert r.change("tribe_digest_delivery_lag_seconds_count") == 1
    lag = r.change("tribe_digest_delivery_lag_seconds_sum")
    sent_at = reload(job).processed_at
    assert lag == pytest.approx((sent_at - reload(job).digest_period).total_seconds(), abs=0.01)
    assert lag >= 60


def test_a_muted_recipients_notification_counts_as_skipped(
    fam, worker_app, stub_broker, stub_worker
):
    r = readings(("tribe_jobs_finished_total", {"kind": "notification", "status": "skipped"}))
    fam.recipient.muted_until = utcnow() + timedelta(days=1)
    fam.recipient.save()
    job = notification_job(fam)

    worker_app.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))
    drain(stub_broker, stub_worker)

    assert reload(job).status == JobStatus.SKIPPED
    assert r.change("tribe_jobs_finished_total", kind="notification", status="skipped") == 1
