"""SMS and WhatsApp jobs delivered through Twilio (the fake, the official client): the text,
its segments on the job, WhatsApp's 24-hour window, Twilio's errors, suppressed numbers."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.support.fakes.twilio import WHATSAPP_FROM, error
from tests.support.family import family, notification_job
from tests.support.jobs import logs_of, reload
from tests.support.waiting import drain
from tribe_shared.contract import Actor, DeliveryMethod, DeliveryStatus, JobStatus
from tribe_shared.models import EmailEvent, Suppression, utcnow
from tribe_shared.texts import OPT_OUT

PHONE = "+447700900123"
TEMPLATE = "HX" + "b" * 32


def deliver(app, worker, job) -> None:
    app.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))
    drain(app.broker, worker)


def test_an_sms_is_sent_through_twilio_and_its_segments_are_recorded(
    twilio_app, twilio_worker, twilio
):
    # Given an update with an emoji (UCS-2: 70 units a segment) for a recipient on SMS
    fam = family(phone=PHONE)
    content = {"title": "First steps 🎉", "body": "Maya walked across the living room today!"}
    job = notification_job(fam, method=DeliveryMethod.SMS, content=content)

    # When the worker delivers it
    deliver(twilio_app, twilio_worker, job)

    # Then Twilio got the text, with the opt-out line and a callback naming the job
    (request,) = twilio.requests
    assert request.form["To"] == PHONE
    assert request.form["Body"] == (
        f"Tribe: First steps 🎉\nMaya walked across the living room today!\n{OPT_OUT}"
    )
    assert request.form["StatusCallback"] == (
        f"https://tribe.test/api/webhooks/twilio?job_id={job.id}"
    )
    # ... and the job is sent with Twilio's SID and the 2 UCS-2 segments it took
    sent = reload(job)
    assert (sent.status, sent.message_id, sent.segments) == (JobStatus.SENT, request.sid, 2)
    (log,) = logs_of(job)
    assert (log.provider, log.status) == ("twilio", DeliveryStatus.SENT)


def test_whatsapp_outside_the_24_hour_window_without_a_template_fails_clearly(
    twilio_app, twilio_worker, twilio
):
    fam = family(phone=PHONE)
    job = notification_job(fam, method=DeliveryMethod.WHATSAPP)

    deliver(twilio_app, twilio_worker, job)

    failed = reload(job)
    assert failed.status == JobStatus.FAILED
    assert failed.failure_reason.startswith("WhatsApp needs an approved template outside")
    assert failed.retry_count == 0
    assert twilio.requests == []


def test_whatsapp_outside_the_window_sends_the_jobs_approved_template(
    twilio_app, twilio_worker, twilio
):
    fam = family(phone=PHONE)
    template = {"name": TEMPLATE, "variables": {"1": "Nana", "2": "Maya walked"}}
    content = {"title": "First steps", "body": "Maya walked", "whatsapp_template": template}
    job = notification_job(fam, method=DeliveryMethod.WHATSAPP, content=content)

    deliver(twilio_app, twilio_worker, job)

    (request,) = twilio.requests
    assert (request.form["From"], request.form["To"]) == (WHATSAPP_FROM, f"whatsapp:{PHONE}")
    assert request.form["ContentSid"] == TEMPLATE
    assert json.loads(request.form["ContentVariables"]) == template["variables"]
    sent = reload(job)
    assert sent.status == JobStatus.SENT
    assert sent.segments is None  # WhatsApp is not split into SMS segments


def test_whatsapp_within_the_window_sends_free_text(twilio_app, twilio_worker, twilio):
    # Given the recipient wrote to us on WhatsApp an hour ago
    fam = family(phone=PHONE)
    EmailEvent.create(
        sg_event_id="twilio:SMinbound",
        event="inbound",
        email=f"whatsapp:{PHONE}",
        occurred_at=utcnow() - timedelta(hours=1),
    )
    job = notification_job(fam, method=DeliveryMethod.WHATSAPP)

    deliver(twilio_app, twilio_worker, job)

    (request,) = twilio.requests
    assert request.form["Body"].startswith("Tribe: First steps\n")
    assert "ContentSid" not in request.form
    assert reload(job).status == JobStatus.SENT


def test_a_transient_twilio_error_is_retried_and_then_sent(twilio_app, twilio_worker, twilio):
    twilio.script(error(503, 20503, "Service Unavailable"))
    job = notification_job(family(phone=PHONE), method=DeliveryMethod.SMS)

    deliver(twilio_app, twilio_worker, job)

    assert [r.status for r in twilio.requests] == [503, 201]
    sent = reload(job)
    assert (sent.status, sent.retry_count) == (JobStatus.SENT, 1)
    assert [log.status for log in logs_of(job)] == [
        DeliveryStatus.TRANSIENT_FAILURE,
        DeliveryStatus.SENT,
    ]


def test_a_permanent_twilio_error_fails_the_job_at_once_with_twilios_reason(
    twilio_app, twilio_worker, twilio
):
    twilio.script(error(400, 21211, "The 'To' number is not a valid phone number"))
    job = notification_job(family(phone=PHONE), method=DeliveryMethod.SMS)

    deliver(twilio_app, twilio_worker, job)

    failed = reload(job)
    assert (failed.status, failed.retry_count) == (JobStatus.FAILED, 0)
    assert "error 21211" in failed.failure_reason
    assert len(twilio.requests) == 1


def test_a_number_that_replied_stop_is_skipped_before_any_call_to_twilio(
    twilio_app, twilio_worker, twilio
):
    now = utcnow()
    Suppression.create(email=PHONE, reason="unsubscribed", source="twilio:STOP", suppressed_at=now)
    sms = notification_job(family(phone=PHONE), method=DeliveryMethod.SMS)
    whatsapp = notification_job(family(phone=PHONE), method=DeliveryMethod.WHATSAPP)

    deliver(twilio_app, twilio_worker, sms)

    assert reload(sms).status == JobStatus.SKIPPED
    assert reload(sms).failure_reason == "suppressed: unsubscribed"
    assert twilio.requests == []
    # A STOP to the SMS sender says nothing of WhatsApp (it fails here for want of a template)
    deliver(twilio_app, twilio_worker, whatsapp)
    assert reload(whatsapp).status == JobStatus.FAILED


def test_a_recipient_without_a_phone_fails_at_once(twilio_app, twilio_worker, twilio):
    job = notification_job(family(phone=None), method=DeliveryMethod.SMS)

    deliver(twilio_app, twilio_worker, job)

    assert reload(job).failure_reason == "The recipient has no phone number"
    assert twilio.requests == []
