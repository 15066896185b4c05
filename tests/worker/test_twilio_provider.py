"""The Twilio provider against a fake speaking Twilio's Messages API, through the official
client: what it sends, and how each of Twilio's answers comes out."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.fakes.redis_server import free_port
from tests.support.fakes.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SMS_FROM,
    WHATSAPP_FROM,
    Reply,
    error,
)
from tribe_worker.emails.providers import DeliveryError
from tribe_worker.sms import WhatsAppTemplate
from tribe_worker.sms.twilio import TwilioProvider

PHONE = "+447700900123"
SERVICE = "MG" + "1" * 32


def provider(twilio, **options) -> TwilioProvider:
    defaults = {"sms_from": SMS_FROM, "whatsapp_from": WHATSAPP_FROM, "base_url": twilio.url}
    return TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, **{**defaults, **options})


def test_an_sms_is_posted_with_our_credentials_and_a_status_callback_naming_its_job(twilio):
    job_id = uuid.uuid4()
    sms = provider(twilio, status_callback="https://tribe.test/api/webhooks/twilio")

    sid = sms.send("sms", PHONE, "Maya walked today", job_id=job_id)

    (request,) = twilio.requests
    assert request.authorized
    assert sid == request.sid and sid.startswith("SM")
    assert request.form == {
        "To": PHONE,
        "From": SMS_FROM,
        "Body": "Maya walked today",
        "StatusCallback": f"https://tribe.test/api/webhooks/twilio?job_id={job_id}",
    }


def test_a_messaging_service_picks_the_sender_when_configured(twilio):
    provider(twilio, sms_from=None, messaging_service_sid=SERVICE).send("sms", PHONE, "Hi")

    (request,) = twilio.requests
    assert request.form["MessagingServiceSid"] == SERVICE
    assert "From" not in request.form


def test_whatsapp_goes_from_the_whatsapp_sender_as_text_or_as_an_approved_template(twilio):
    whatsapp = provider(twilio)
    template = WhatsAppTemplate("HX" + "a" * 32, {"1": "The Smiths", "2": "First steps"})

    whatsapp.send("whatsapp", PHONE, "Hi")
    whatsapp.send("whatsapp", PHONE, "Hi", template=template)

    text, templated = twilio.requests
    assert (text.form["To"], text.form["From"], text.form["Body"]) == (
        f"whatsapp:{PHONE}",
        WHATSAPP_FROM,
        "Hi",
    )
    assert "Body" not in templated.form
    assert templated.form["ContentSid"] == template.name
    assert json.loads(templated.form["ContentVariables"]) == template.variables


@pytest.mark.parametrize(
    ("reply", "transient"),
    [
        (error(400, 21211, "The 'To' number is not a valid phone number"), False),
        (error(400, 21610, "Attempt to send to unsubscribed recipient"), False),
        (error(400, 21614, "'To' number is not a valid mobile number"), False),
        (error(400, 63016, "Outside the allowed window"), False),
        (error(429, 20429, "Too Many Requests"), True),
        (error(400, 14107, "SMS rate limit exceeded"), True),
        (error(500, 20500, "Internal Server Error"), True),
        (error(503, 20503, "Service Unavailable"), True),
        (error(502, 0, "Bad Gateway"), True),
    ],
    ids=lambda value: str(value.code) if isinstance(value, Reply) else None,
)
def test_twilio_errors_are_transient_or_permanent_by_their_code(twilio, reply, transient):
    twilio.script(reply)

    with pytest.raises(DeliveryError) as raised:
        provider(twilio).send("sms", PHONE, "Hi")

    assert raised.value.transient is transient
    assert not raised.value.refused
    assert f"error {reply.code}" in raised.value.reason


def test_whatsapp_outside_its_window_says_a_template_is_needed(twilio):
    twilio.script(error(400, 63016, "Failed to send freeform message"))

    with pytest.raises(DeliveryError, match="approved template is needed"):
        provider(twilio).send("whatsapp", PHONE, "Hi")


def test_refused_credentials_pause_sending_instead_of_failing_the_message(twilio):
    with pytest.raises(DeliveryError) as raised:
        TwilioProvider(ACCOUNT_SID, "wrong", sms_from=SMS_FROM, base_url=twilio.url).send(
            "sms", PHONE, "Hi"
        )

    assert raised.value.refused
    assert "20003" in raised.value.reason


def test_no_answer_in_time_or_no_twilio_at_all_is_transient(twilio):
    twilio.script(Reply(delay=1.0))
    with pytest.raises(DeliveryError) as slow:
        provider(twilio, timeout=0.3).send("sms", PHONE, "Hi")
    with pytest.raises(DeliveryError) as unreachable:
        provider(twilio, base_url=f"http://127.0.0.1:{free_port()}").send("sms", PHONE, "Hi")

    assert slow.value.transient and "unreachable" in slow.value.reason
    assert unreachable.value.transient


@pytest.mark.parametrize(
    ("channel", "options", "missing"),
    [
        ("sms", {"sms_from": None}, "TWILIO_SMS_FROM"),
        ("whatsapp", {"whatsapp_from": None}, "TWILIO_WHATSAPP_FROM"),
    ],
)
def test_a_channel_without_a_sender_fails_clearly_without_calling_twilio(
    twilio, channel, options, missing
):
    with pytest.raises(DeliveryError, match=missing) as raised:
        provider(twilio, **options).send(channel, PHONE, "Hi")

    assert not raised.value.transient
    assert twilio.requests == []
