"""Twilio's webhook, driven through the API with requests signed as Twilio signs them (the
official ``RequestValidator``): status callbacks give the job its outcome, inbound STOP and
START suppress and restore the number; unsigned, forged and replayed requests change nothing."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from tests.support.fakes.twilio import AUTH_TOKEN, SMS_FROM, WHATSAPP_FROM
from tests.support.family import user
from tests.support.family_api import job_row
from tests.support.http_assertions import assert_json_error
from tests.support.jobs import reload
from tribe_shared.contract import DeliveryMethod, JobStatus
from tribe_shared.models import EmailEvent, Suppression

PATH = "/api/webhooks/twilio"
PUBLIC_URL = "https://tribe.test"
PHONE = "+447700900123"


def post(api, form: dict, *, job_id=None, token: str = AUTH_TOKEN, signed_for: str | None = None,
         signature: str | None = None):  # fmt: skip
    """POST ``form`` as Twilio does, signed with ``token`` over the URL it is posted to (or
    over ``signed_for``, another URL)."""
    query = f"job_id={job_id}" if job_id else ""
    url = f"{PUBLIC_URL}{PATH}" + (f"?{query}" if query else "")
    if signature is None:
        signature = RequestValidator(token).compute_signature(signed_for or url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return api.simulate_post(PATH, query_string=query, body=urlencode(form), headers=headers)


def callback(status: str, sid: str = "SM" + "1" * 32, **extra) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": SMS_FROM,
        "To": PHONE,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def inbound(body: str, sid: str, sender: str = PHONE, **extra) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": SMS_FROM,
        "Body": body,
        "SmsStatus": "received",
        "NumMedia": "0",
        **extra,
    }


@pytest.fixture
def sent_sms(tokens):
    user(tokens.alice_id)
    return job_row(
        tokens.alice_id,
        status=JobStatus.SENT,
        delivery_method=DeliveryMethod.SMS,
        to_email=None,
        message_id="SM" + "1" * 32,
    )


def test_a_signed_delivered_callback_gives_the_job_its_outcome(twilio_api, sent_sms):
    response = post(twilio_api, callback("sent"), job_id=sent_sms.id)
    assert response.status_code == 200, response.text
    response = post(twilio_api, callback("delivered"), job_id=sent_sms.id)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response>" in response.text
    job = reload(sent_sms)
    assert (job.status, job.delivery_outcome) == (JobStatus.SENT, "delivered")
    events = EmailEvent.select().where(EmailEvent.job_id == sent_sms.id).order_by(EmailEvent.event)
    assert [(e.event, e.email) for e in events] == [("delivered", PHONE), ("sent", PHONE)]


def test_an_undelivered_or_failed_message_says_why(twilio_api, sent_sms):
    form = callback("undelivered", ErrorCode="30003", ErrorMessage="Unreachable handset")

    assert post(twilio_api, form, job_id=sent_sms.id).status_code == 200

    job = reload(sent_sms)
    assert job.delivery_outcome == "bounced"
    assert job.delivery_reason == "Twilio error 30003: Unreachable handset"


def test_a_failure_because_the_number_replied_stop_suppresses_it(twilio_api, sent_sms):
    form = callback("failed", ErrorCode="21610")

    assert post(twilio_api, form, job_id=sent_sms.id).status_code == 200

    assert reload(sent_sms).delivery_outcome == "dropped"
    assert Suppression.get_by_id(PHONE).reason == "unsubscribed"


def test_a_replayed_callback_is_answered_and_changes_nothing(twilio_api, sent_sms):
    # Given a delivered callback, then a later "undelivered" for the same message
    assert post(twilio_api, callback("undelivered"), job_id=sent_sms.id).status_code == 200
    before = reload(sent_sms).delivery_outcome_at

    # When the first request is posted again, exactly as captured
    again = post(twilio_api, callback("undelivered"), job_id=sent_sms.id)

    # Then it is answered 200 (Twilio stops retrying) and nothing is stored or moved again
    assert again.status_code == 200
    assert EmailEvent.select().where(EmailEvent.job_id == sent_sms.id).count() == 1
    assert reload(sent_sms).delivery_outcome_at == before


def test_a_signature_replayed_for_another_jobs_url_is_refused(twilio_api, sent_sms, tokens):
    other = job_row(tokens.alice_id, status=JobStatus.SENT, delivery_method=DeliveryMethod.SMS)
    genuine_url = f"{PUBLIC_URL}{PATH}?job_id={sent_sms.id}"

    response = post(twilio_api, callback("failed"), job_id=other.id, signed_for=genuine_url)

    body = assert_json_error(response, 401)
    assert body["code"] == "invalid_signature"
    assert reload(other).delivery_outcome is None
    assert EmailEvent.select().count() == 0


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"token": "not-our-token"}, "invalid_signature"),
        ({"signature": "bm90IGEgc2lnbmF0dXJl"}, "invalid_signature"),
        ({"signature": ""}, "missing_signature"),
    ],
    ids=["forged with another token", "made up", "unsigned"],
)
def test_a_forged_or_unsigned_request_is_refused_and_changes_nothing(
    twilio_api, sent_sms, options, code
):
    response = post(twilio_api, callback("delivered"), job_id=sent_sms.id, **options)

    assert assert_json_error(response, 401)["code"] == code
    assert reload(sent_sms).delivery_outcome is None
    assert EmailEvent.select().count() == 0


def test_an_altered_body_is_refused(twilio_api, sent_sms):
    url = f"{PUBLIC_URL}{PATH}?job_id={sent_sms.id}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, callback("sent"))

    response = post(twilio_api, callback("delivered"), job_id=sent_sms.id, signature=signature)

    assert assert_json_error(response, 401)["code"] == "invalid_signature"


def test_stop_suppresses_the_number_and_start_restores_it(twilio_api):
    # When the recipient replies STOP
    assert post(twilio_api, inbound("Stop", "SM" + "a" * 32)).status_code == 200

    # Then the number is suppressed (SMS only: WhatsApp is another address)
    stopped = Suppression.get_by_id(PHONE)
    assert (stopped.reason, stopped.source) == ("unsubscribed", "twilio:STOP")
    assert stopped.suppressed_at is not None

    # When they reply START, it is lifted
    assert post(twilio_api, inbound("START", "SM" + "b" * 32)).status_code == 200
    assert Suppression.get_or_none(Suppression.email == PHONE) is None

    # And the STOP posted again (a replay) does not suppress it again
    assert post(twilio_api, inbound("Stop", "SM" + "a" * 32)).status_code == 200
    assert Suppression.get_or_none(Suppression.email == PHONE) is None


def test_advanced_opt_out_is_honoured_whatever_the_word(twilio_api):
    form = inbound("ARRET", "SM" + "c" * 32, OptOutType="STOP")

    assert post(twilio_api, form).status_code == 200

    assert Suppression.get_by_id(PHONE).reason == "unsubscribed"


def test_an_inbound_whatsapp_message_opens_the_window_for_that_number(twilio_api):
    form = inbound("Lovely photos!", "SM" + "d" * 32, sender=f"whatsapp:{PHONE}")
    form["To"] = WHATSAPP_FROM

    assert post(twilio_api, form).status_code == 200

    (event,) = EmailEvent.select()
    assert (event.event, event.email) == ("inbound", f"whatsapp:{PHONE}")
    assert "Lovely" not in str(event.detail)  # the recipient's words are not kept
    assert Suppression.select().count() == 0


def test_without_a_token_the_webhook_answers_503(api, sent_sms):
    response = post(api, callback("delivered"), job_id=sent_sms.id)

    assert assert_json_error(response, 503)["code"] == "webhook_not_configured"


def test_a_body_that_is_not_a_form_is_a_415(twilio_api):
    response = twilio_api.simulate_post(
        PATH, json={"MessageSid": "SM1"}, headers={"X-Twilio-Signature": "x"}
    )

    assert assert_json_error(response, 415)["code"] == "unsupported_media_type"


def test_a_stopped_number_is_listed_and_lifted_like_an_address(twilio_api, tokens):
    assert post(twilio_api, inbound("STOP", "SM" + "e" * 32)).status_code == 200

    listed = twilio_api.simulate_get(
        "/api/suppressions", query_string="email=%2B447700900123", headers=tokens.service
    )
    lifted = twilio_api.simulate_delete("/api/suppressions/%2B447700900123", headers=tokens.service)

    assert [s["email"] for s in listed.json["suppressions"]] == [PHONE]
    assert lifted.status_code == 200, lifted.text
    assert Suppression.select().count() == 0
