"""The ``dispatch_notification`` actor: a notification to a recipient by email, skipped when the
recipient is muted at send time, and failed clearly for SMS/WhatsApp (no provider yet)."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
import pytest

from tests.support.family import NOTIFICATION_CONTENT, family, notification_job
from tests.support.jobs import logs_of, reload
from tests.support.mail import content_of
from tests.support.waiting import drain, wait_until
from tests.support.workers import running_worker
from tribe_shared.contract import Actor, DeliveryMethod, DeliveryStatus, JobStatus, Queue, Urgency
from tribe_shared.models import Recipient, utcnow

NOTIFICATIONS_URL = "/api/notifications"


def post_notification(api, headers, fam, **fields) -> dict:
    body = {
        "recipient_id": str(fam.recipient.id),
        "group_id": str(fam.group.id),
        "content": NOTIFICATION_CONTENT,
        **fields,
    }
    response = api.simulate_post(NOTIFICATIONS_URL, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json["job"]


def test_an_email_notification_is_rendered_from_the_notification_template_and_sent(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given Alice's recipient, and a notification whose text tries to smuggle in markup
    fam = family(tokens.alice_id, email="nana@example.com")
    content = {**NOTIFICATION_CONTENT, "body": "Maya said <script>alert(1)</script> today"}

    # When it is accepted and the worker runs
    job = post_notification(api, tokens.alice, fam, content=content)
    drain(stub_broker, stub_worker)

    # Then SendGrid got one email to the recipient, built from the notification template
    (request,) = sendgrid.wait_for_requests(1)
    assert request.recipients == ["nana@example.com"]
    assert request.job_ids == [job["id"]]
    assert request.body["subject"] == "News about Maya: First steps"
    text, html = content_of(request, "text/plain"), content_of(request, "text/html")
    for part in ("First steps", "Maya"):
        assert part in text
        assert part in html
    assert "Maya said <script>alert(1)</script> today" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    # ... and the job and its delivery log say so
    sent = reload(job["id"])
    assert sent.status == JobStatus.SENT
    assert sent.message_id == request.message_id
    (log,) = logs_of(sent)
    assert (log.attempt, log.provider, log.status) == (1, "sendgrid", DeliveryStatus.SENT)


@pytest.mark.parametrize(
    ("muted_for", "expected"),
    [
        (timedelta(days=1), JobStatus.SKIPPED),
        (-timedelta(minutes=1), JobStatus.SENT),  # a mute that has already ended
    ],
)
def test_a_recipient_muted_at_send_time_is_skipped_and_gets_nothing(
    api, tokens, stub_broker, sendgrid, muted_for, expected
):
    # Given a notification accepted while its recipient was not muted
    fam = family(tokens.alice_id)
    job = post_notification(api, tokens.alice, fam)
    assert job["status"] == JobStatus.QUEUED

    # ... and the recipient mutes the family before any worker runs
    Recipient.update(muted_until=utcnow() + muted_for).where(
        Recipient.id == fam.recipient.id
    ).execute()

    with running_worker(stub_broker) as worker:
        drain(stub_broker, worker)

    job = reload(job["id"])
    assert job.status == expected
    if expected == JobStatus.SKIPPED:
        assert job.failure_reason == "muted"
        assert job.processed_at is not None
        assert sendgrid.requests == []
        assert logs_of(job) == []
    else:
        assert [r.recipients for r in sendgrid.wait_for_requests(1)] == [[fam.recipient.email]]


@pytest.mark.parametrize("method", [DeliveryMethod.SMS, DeliveryMethod.WHATSAPP])
def test_sms_and_whatsapp_fail_clearly_until_a_provider_is_configured(
    worker_app, stub_broker, stub_worker, sendgrid, method
):
    fam = family(phone="+447700900123")
    job = notification_job(fam, method=method)

    worker_app.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))
    drain(stub_broker, stub_worker)

    job = reload(job)
    assert job.status == JobStatus.FAILED
    assert job.failure_reason == "SMS delivery is not configured"
    assert job.retry_count == 0
    (log,) = logs_of(job)
    assert (log.provider, log.status) == ("disabled", DeliveryStatus.PERMANENT_FAILURE)
    assert log.error == "SMS delivery is not configured"
    assert sendgrid.requests == []
    assert stub_broker.dead_letters == []


@pytest.mark.parametrize("urgency", [Urgency.URGENT, Urgency.HIGH])
def test_an_urgent_notification_travels_on_the_fast_lane_and_is_delivered(
    api, tokens, stub_broker, sendgrid, urgency
):
    fam = family(tokens.alice_id)

    job = post_notification(api, tokens.alice, fam, urgency=urgency)

    assert stub_broker.queues[Queue.EMAILS].qsize() == 0
    (data,) = list(stub_broker.queues[Queue.URGENT].queue)
    message = dramatiq.Message.decode(data)
    assert message.actor_name == f"{Actor.DISPATCH_NOTIFICATION}_urgent"
    assert list(message.args) == [job["id"]]
    with running_worker(stub_broker) as worker:
        drain(stub_broker, worker, Queue.URGENT)
        wait_until(lambda: reload(job["id"]).status == JobStatus.SENT, what="the job sent")
    (request,) = sendgrid.requests
    assert request.job_ids == [job["id"]]


def test_the_urgent_actor_delivers_a_stored_notification(
    worker_app, stub_broker, stub_worker, sendgrid
):
    fam = family()
    job = notification_job(fam, urgency=Urgency.URGENT)

    worker_app.actors[f"{Actor.DISPATCH_NOTIFICATION}_urgent"].send(str(job.id))
    drain(stub_broker, stub_worker, Queue.URGENT)

    assert reload(job).status == JobStatus.SENT
    (request,) = sendgrid.wait_for_requests(1)
    assert request.recipients == [fam.recipient.email]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({**NOTIFICATION_CONTENT, "subject": ["not", "text"]}, "subject"),
        ({**NOTIFICATION_CONTENT, "subject": 42}, "subject"),
        ({**NOTIFICATION_CONTENT, "media_urls": 7}, "media_urls"),
    ],
    ids=["subject a list", "subject a number", "media_urls a number"],
)
def test_stored_content_that_cannot_render_fails_that_job_alone_at_once(
    worker_app, stub_broker, stub_worker, sendgrid, content, named
):
    # Given three notifications of one update in one message, the middle one's content
    # malformed (stored before the API validated it, or written by hand)
    fam = family(email="nana@example.com")
    good = [notification_job(fam), notification_job(fam)]
    bad = notification_job(fam, content=content)
    ids = [str(good[0].id), str(bad.id), str(good[1].id)]

    # When the worker runs the message
    worker_app.actors[Actor.DISPATCH_NOTIFICATION].send(ids)
    drain(stub_broker, stub_worker)

    # Then the malformed one failed at once, on its first attempt, with the reason, and the
    # others were sent; nothing went to the dead letters and nothing waits for a lease
    failed = reload(bad)
    assert failed.status == JobStatus.FAILED
    assert failed.retry_count == 0
    assert named in failed.failure_reason
    (log,) = logs_of(failed)
    assert log.status == DeliveryStatus.PERMANENT_FAILURE
    assert [reload(job).status for job in good] == [JobStatus.SENT, JobStatus.SENT]
    assert len(sendgrid.requests) == 2
    assert stub_broker.dead_letters == []
