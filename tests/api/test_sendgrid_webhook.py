"""SendGrid's signed event webhook, driven through the API with batches signed by a real ECDSA
P-256 key exactly as SendGrid signs them: stored once, applied in any order, refused (and
nothing changed) when unsigned, forged, altered, stale or malformed."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace

import pytest
from falcon import testing
from sendgrid.helpers.eventwebhook import EventWebhook

from tests.support.family import user
from tests.support.family_api import every_row, job_row
from tests.support.http_assertions import assert_json_error
from tests.support.jobs import reload
from tests.support.webhooks import (
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    SendGridSigner,
    batch_body,
    event,
    post_batch,
)
from tribe_api.app import create_app
from tribe_shared.contract import JobStatus
from tribe_shared.models import EmailEvent, Suppression


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def api(settings, stub_broker, signer) -> testing.TestClient:
    configured = replace(settings, sendgrid_webhook_public_key=signer.public_key)
    return testing.TestClient(create_app(configured, broker=stub_broker))


def sent_by(user_id):
    """A job of ``user_id``'s that SendGrid accepted."""
    user(user_id)
    return job_row(user_id, status=JobStatus.SENT, to_email="nana@example.com")


@pytest.fixture
def sent_job(tokens):
    return sent_by(tokens.alice_id)


def test_a_signed_batch_gives_the_job_its_outcome_and_its_timeline(api, tokens, signer, sent_job):
    # Given a sent email, and SendGrid's events for it
    processed = event("processed", job_id=sent_job.id, timestamp=1_800_000_000)
    delivered = event("delivered", job_id=sent_job.id, timestamp=1_800_000_005, response="250 OK")

    # When SendGrid posts them, signed
    response = post_batch(api, signer, processed, delivered)

    # Then they are stored, and the job shows its outcome and its events in order
    assert response.status_code == 200, response.text
    assert response.json == {"received": 2, "stored": 2, "duplicates": 0}
    detail = api.simulate_get(f"/api/jobs/{sent_job.id}", headers=tokens.alice).json
    job = detail["job"]
    assert (job["status"], job["delivery_outcome"], job["delivery_reason"]) == (
        "sent",
        "delivered",
        "250 OK",
    )
    assert job["delivery_outcome_at"] == "2027-01-15T08:00:05Z"
    assert [e["event"] for e in detail["events"]] == ["processed", "delivered"]
    assert detail["events"][1]["detail"] == {"response": "250 OK"}


def test_a_batch_posted_again_stores_and_applies_nothing_twice(api, signer, sent_job):
    # Given a batch with a block, already received
    block = event("bounce", job_id=sent_job.id, type="blocked", reason="421 try later")
    assert post_batch(api, signer, block).json["stored"] == 1

    # When SendGrid posts it again (it retries batches)
    again = post_batch(api, signer, block)

    # Then nothing new is stored, and the block is counted once
    assert again.status_code == 200
    assert again.json == {"received": 1, "stored": 0, "duplicates": 1}
    assert EmailEvent.select().count() == 1
    assert Suppression.get_by_id("nana@example.com").soft_bounces == 1


def test_an_event_twice_in_one_batch_is_stored_once(api, signer, sent_job):
    twice = event("delivered", job_id=sent_job.id)

    response = post_batch(api, signer, twice, twice)

    assert response.json == {"received": 2, "stored": 1, "duplicates": 1}


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        ("open", "delivered", "delivered"),
        ("bounce", "delivered", "bounced"),
        ("delivered", "deferred", "delivered"),
        ("spamreport", "delivered", "complained"),
        ("deferred", "bounce", "bounced"),
    ],
)
def test_events_applied_in_any_order_never_move_a_job_back(
    api, signer, sent_job, first, then, expected
):
    # Given events that arrive out of order, in one batch or in two
    early = event(first, job_id=sent_job.id, timestamp=1_800_000_010)
    late = event(then, job_id=sent_job.id, timestamp=1_800_000_000)

    post_batch(api, signer, early)
    post_batch(api, signer, late)

    assert reload(sent_job).delivery_outcome == expected


def test_reordered_events_within_one_batch_end_in_the_same_state(api, signer, tokens):
    jobs = [sent_by(tokens.alice_id) for _ in range(2)]
    events = [
        event("delivered", job_id=jobs[0].id, timestamp=1_800_000_001),
        event("bounce", job_id=jobs[0].id, timestamp=1_800_000_002, reason="550 no such user"),
    ]

    post_batch(api, signer, *events)
    post_batch(api, signer, *[{**e, "sg_event_id": uuid.uuid4().hex, "job_id": str(jobs[1].id)}
                              for e in reversed(events)])  # fmt: skip

    assert [reload(job).delivery_outcome for job in jobs] == ["bounced", "bounced"]
    assert reload(jobs[1]).delivery_reason == "550 no such user"


def test_events_of_unknown_jobs_and_events_without_a_job_are_kept(api, signer, sent_job):
    gone, unmatched = event("delivered", job_id=uuid.uuid4()), event("delivered")
    garbled = event("open", job_id="not-a-uuid")

    response = post_batch(api, signer, gone, unmatched, garbled, event("open", job_id=sent_job.id))

    assert response.json["stored"] == 4
    kept = {e.sg_event_id: e.job_id for e in EmailEvent.select()}
    assert kept[gone["sg_event_id"]] == uuid.UUID(gone["job_id"])
    assert kept[unmatched["sg_event_id"]] is None and kept[garbled["sg_event_id"]] is None
    assert reload(sent_job).delivery_outcome == "delivered"


def test_every_event_type_is_accepted_and_one_without_an_id_is_stored_once(api, signer):
    strange = event("machine_opened", sg_event_id=None)
    strange.pop("sg_event_id")

    assert post_batch(api, signer, strange).json["stored"] == 1
    assert post_batch(api, signer, strange).json["stored"] == 0


def _refusals(api, signer, body: bytes):
    """Each way a batch can fail to be SendGrid's: (what, headers, expected code)."""
    other = SendGridSigner()
    old = int(time.time()) - 3600
    return [
        ("unsigned", {"Content-Type": "application/json"}, "missing_signature"),
        ("signed by another key", other.headers(body), "invalid_signature"),
        ("signature of another body", signer.headers(body + b" "), "invalid_signature"),
        ("signed an hour ago", signer.headers(body, timestamp=old), "stale_batch"),
        ("signed an hour ahead", signer.headers(body, timestamp=old + 7200), "stale_batch"),
        (
            "signature not base64",
            {**signer.headers(body), SIGNATURE_HEADER: "%%%"},
            "invalid_signature",
        ),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_batch_that_is_not_sendgrid_s_is_refused_and_changes_nothing(api, signer, sent_job, case):
    # Given a batch that would bounce the job and suppress its address
    body = batch_body(event("bounce", job_id=sent_job.id, reason="550"))
    what, headers, code = _refusals(api, signer, body)[case]
    before = every_row()

    # When it arrives without SendGrid's valid, fresh signature
    response = api.simulate_post(WEBHOOK_PATH, body=body, headers=headers)

    # Then it is refused, saying why, and nothing changed
    error = assert_json_error(response, 401)
    assert error["code"] == code, what
    assert every_row() == before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"event": "delivered"}',
        b"[1, 2]",
        batch_body({"event": "delivered", "email": "a@example.com"}),  # no timestamp
        batch_body(event("delivered"), {"email": "a@example.com", "timestamp": 1}),  # no event
        batch_body(event("delivered", timestamp="yesterday")),
    ],
)
def test_a_signed_but_malformed_batch_is_refused_and_changes_nothing(api, signer, body):
    before = every_row()

    response = api.simulate_post(WEBHOOK_PATH, body=body, headers=signer.headers(body))

    assert assert_json_error(response, 400)["code"] == "malformed_batch"
    assert every_row() == before


def test_without_the_key_the_webhook_answers_503(settings, stub_broker, signer):
    api = testing.TestClient(create_app(settings, broker=stub_broker))
    body = batch_body(event("delivered"))

    response = api.simulate_post(WEBHOOK_PATH, body=body, headers=signer.headers(body))

    assert assert_json_error(response, 503)["code"] == "webhook_not_configured"


def test_sendgrid_s_own_helper_agrees_with_the_signatures_we_accept(signer):
    # The signature the tests make is the one SendGrid's library verifies, and not another's
    body = batch_body(event("delivered"))
    headers = signer.headers(body)
    helper = EventWebhook(signer.public_key)

    assert helper.verify_signature(
        body.decode(), headers[SIGNATURE_HEADER], headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    )
    assert not helper.verify_signature(
        body.decode() + " ", headers[SIGNATURE_HEADER],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([("bounce", {"type": "bounce", "reason": "550 5.1.1 no such user"})], "bounced"),
        ([("dropped", {"reason": "Invalid"})], "invalid"),
        ([("dropped", {"reason": "Bounced Address"})], "bounced"),
        ([("spamreport", {})], "complained"),
        ([("unsubscribe", {})], "unsubscribed"),
        ([("bounce", {"type": "blocked", "reason": "554 blocked"})] * 3, "blocked"),
    ],
)
def test_what_suppresses_an_address(api, signer, tokens, events, reason):
    batch = [event(kind, email="Nana@Example.com", **fields) for kind, fields in events]

    post_batch(api, signer, *batch)

    listed = api.simulate_get("/api/suppressions", headers=tokens.service_key).json
    assert [(s["email"], s["reason"]) for s in listed["suppressions"]] == [
        ("nana@example.com", reason)
    ]


BLOCK = ("bounce", {"type": "blocked"})


@pytest.mark.parametrize(
    "events",
    [
        [BLOCK] * 2,
        [BLOCK] * 2 + [("delivered", {})] + [BLOCK],
        [("deferred", {})],
        [("dropped", {"reason": "Invalid SMTPAPI header"})],
    ],
)  # fmt: skip
def test_what_does_not_suppress_an_address(api, signer, events):
    batch = [
        event(kind, timestamp=1_800_000_000 + n, **fields)
        for n, (kind, fields) in enumerate(events)
    ]

    post_batch(api, signer, *batch)

    assert not Suppression.select().where(Suppression.suppressed_at.is_null(False)).exists()


def test_the_webhook_counts_new_events_by_type(api, signer):
    post_batch(api, signer, event("delivered"), event("open"), event("weird"))

    metrics = api.simulate_get("/metrics").text

    assert 'tribe_email_events_total{event="delivered"} 1.0' in metrics
    assert 'tribe_email_events_total{event="other"} 1.0' in metrics


def test_the_batch_is_checked_before_it_is_parsed(api, signer):
    # A forged body that is not even JSON is a 401, not a 400: nothing reads it unverified
    body = b"\xff not json"
    forged = base64.b64encode(b"x" * 70).decode()

    response = api.simulate_post(
        WEBHOOK_PATH, body=body, headers={**signer.headers(body), SIGNATURE_HEADER: forged}
    )

    assert assert_json_error(response, 401)["code"] == "invalid_signature"
    assert json.loads(response.text)["title"]
