"""What the provider's events change for the next email: a bounce or a complaint stops it
before any SendGrid call, a one-click unsubscribe as Gmail posts it mutes the recipient for the
group and pauses their digest; and what every update and digest email now carries (RFC 8058's
headers, the family as the sender)."""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from datetime import timedelta

import pytest
from falcon import testing

from tests.support.digests import schedule_for, tick
from tests.support.family import (
    family,
    group_of,
    notification_job,
    recipient_of,
    update_in,
    user,
)
from tests.support.family_api import digest_schedule, post_update
from tests.support.jobs import email_job, reload, send_queued
from tests.support.waiting import drain
from tests.support.webhooks import SendGridSigner, event, post_batch
from tests.support.workers import running_worker
from tribe_api.app import create_app
from tribe_shared.contract import JobStatus
from tribe_shared.models import DigestSchedule, GroupUnsubscribe, utcnow
from tribe_shared.settings import DEV_UNSUBSCRIBE_SECRET
from tribe_shared.unsubscribe import Scope, UnsubscribeTokens
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.metrics import suppressed_skips
from tribe_worker.worker import build_worker

API_URL = "https://jobs.tribe.example"


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner()


@pytest.fixture
def configured(settings, signer):
    return replace(
        settings,
        sendgrid_webhook_public_key=signer.public_key,
        api_public_url=API_URL,
        unsubscribe_mailto="unsubscribe@tribe.example",
    )


@pytest.fixture
def worker_app(configured, stub_broker, sendgrid):
    provider = SendGridProvider(configured.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(configured, broker=stub_broker, provider=provider)


@pytest.fixture
def api(configured, stub_broker, worker_app):
    return testing.TestClient(create_app(configured, broker=stub_broker))


def test_a_bounce_suppresses_the_address_and_the_next_email_is_skipped_unsent(
    api, signer, stub_broker, stub_worker, sendgrid
):
    # Given an email sent to Nana
    first = email_job(to="Nana@Example.com")
    send_queued(stub_broker, [first], utcnow())
    drain(stub_broker, stub_worker)
    assert len(sendgrid.wait_for_requests(1)) == 1

    # When SendGrid reports that it bounced
    bounce = event("bounce", email="nana@example.com", job_id=first.id, reason="550 5.1.1")
    assert post_batch(api, signer, bounce).status_code == 200

    # Then the next email to Nana ends skipped, with the reason, and SendGrid hears nothing
    before = suppressed_skips.labels(kind="email")._value.get()
    second = email_job(to="nana@example.com")
    send_queued(stub_broker, [second], utcnow())
    drain(stub_broker, stub_worker)
    assert reload(first).delivery_outcome == "bounced"
    skipped = reload(second)
    assert (skipped.status, skipped.failure_reason) == (JobStatus.SKIPPED, "suppressed: bounced")
    assert len(sendgrid.requests) == 1
    assert suppressed_skips.labels(kind="email")._value.get() == before + 1


def test_a_bulk_batch_leaves_a_suppressed_address_out_and_sends_to_the_others(
    api, signer, stub_broker, stub_worker, sendgrid
):
    post_batch(api, signer, event("spamreport", email="grumpy@example.com"))
    jobs = [email_job(to=to, batch_key="same") for to in ("a@example.com", "grumpy@example.com")]

    send_queued(stub_broker, jobs, utcnow())
    drain(stub_broker, stub_worker)

    (request,) = sendgrid.wait_for_requests(1)
    assert request.recipients == ["a@example.com"]
    assert reload(jobs[1]).failure_reason == "suppressed: complained"


def test_lifting_a_suppression_lets_email_through_again(api, tokens, signer):
    post_batch(api, signer, event("bounce", email="nana@example.com"))

    lifted = api.simulate_delete("/api/suppressions/Nana@example.com", headers=tokens.service_key)
    again = api.simulate_delete("/api/suppressions/nana@example.com", headers=tokens.service_key)
    by_user = api.simulate_get("/api/suppressions", headers=tokens.alice)

    assert lifted.status_code == 200 and again.status_code == 404
    assert by_user.status_code == 403
    assert api.simulate_get("/api/suppressions", headers=tokens.service).json["total"] == 0


def test_an_update_email_carries_the_one_click_headers_and_the_family_as_sender(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given Nana in the Smiths' group
    alice = user(tokens.alice_id)
    group = group_of(alice)
    group.family_name = "The Smiths"
    group.save()
    nana = recipient_of(alice, groups=(group,))

    # When an update is delivered
    post_update(api, tokens.alice, group)
    drain(stub_broker, stub_worker)

    # Then it comes from "The Smiths on Tribe" with Nana's own signed unsubscribe link
    (request,) = sendgrid.wait_for_requests(1)
    assert request.body["from"] == {"email": "no-reply@tribe.local", "name": "The Smiths on Tribe"}
    headers = request.body["personalizations"][0]["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url, mailto = (part.strip("<> ") for part in headers["List-Unsubscribe"].split(","))
    assert url.startswith(f"{API_URL}/api/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@tribe.example?subject=unsubscribe%20")
    token = UnsubscribeTokens(DEV_UNSUBSCRIBE_SECRET).read(url.rsplit("/", 1)[1], utcnow())
    assert (token.recipient_id, token.group_id, token.scope) == (nana.id, group.id, Scope.GROUP)
    html = next(c["value"] for c in request.body["content"] if c["type"] == "text/html")
    assert f'href="{url}"' in html


def test_a_digest_email_carries_the_headers_and_its_links(
    tokens, stub_broker, worker_app, sendgrid
):
    # Given a daily digest with an update in its window
    now = utcnow()
    fam = family(tokens.alice_id)
    schedule = schedule_for(fam, now - timedelta(days=1))
    update_in(fam.group, created_at=now - timedelta(hours=2))

    # When the scan makes its digest and it is delivered
    tick(schedule, stub_broker, now)
    with running_worker(stub_broker) as worker:
        drain(stub_broker, worker)

    # Then it carries Nana's one-click headers and an Unsubscribe link in its text
    (request,) = sendgrid.wait_for_requests(1)
    headers = request.body["personalizations"][0]["headers"]
    assert headers["List-Unsubscribe"].startswith(f"<{API_URL}/api/unsubscribe/")
    text = next(c["value"] for c in request.body["content"] if c["type"] == "text/plain")
    assert "Unsubscribe: https://jobs.tribe.example/api/unsubscribe/" in text


def test_one_click_as_gmail_posts_it_mutes_the_recipient_for_the_group_and_pauses_the_digest(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given Nana in Alice's group, on a digest of it, and the link of an email she got
    fam = family(tokens.alice_id)
    schedule = digest_schedule(fam.recipient, fam.group)
    token = UnsubscribeTokens(DEV_UNSUBSCRIBE_SECRET).sign(
        fam.recipient.id, fam.group.id, Scope.GROUP, utcnow()
    )

    # When her mail provider posts the one-click unsubscribe (RFC 8058: no cookie, no token)
    response = api.simulate_post(
        f"/api/unsubscribe/{token}",
        body="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    # Then it is done at once, 200 and no redirect; her digest of the group is paused
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert GroupUnsubscribe.select().where(GroupUnsubscribe.recipient == fam.recipient.id).count()
    paused = DigestSchedule.get_by_id(schedule.id)
    assert (paused.is_active, paused.next_digest_scheduled) == (False, None)
    # ... and the next update of the group reaches her no more
    posted = post_update(api, tokens.alice, fam.group)
    assert posted["notifications"]["unsubscribed"] == 1
    drain(stub_broker, stub_worker)
    assert sendgrid.requests == []
    recipient = api.simulate_get(f"/api/recipients/{fam.recipient.id}", headers=tokens.alice).json
    assert recipient["unsubscribed_group_ids"] == [str(fam.group.id)]


def test_a_notification_already_queued_when_she_unsubscribed_is_skipped(
    api, tokens, stub_broker, sendgrid
):
    fam = family(tokens.alice_id)
    job = notification_job(fam)
    token = UnsubscribeTokens(DEV_UNSUBSCRIBE_SECRET).sign(
        fam.recipient.id, fam.group.id, Scope.GROUP, utcnow()
    )
    api.simulate_post(f"/api/unsubscribe/{token}", body="List-Unsubscribe=One-Click",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip

    send_queued(stub_broker, [job], utcnow())
    with running_worker(stub_broker) as worker:
        drain(stub_broker, worker)

    assert reload(job).failure_reason == "unsubscribed from the group's emails"
    assert sendgrid.requests == []


@pytest.mark.parametrize("mangle", ["altered", "forged", "expired"])
def test_a_bad_link_changes_nothing_and_says_so(api, tokens, mangle):
    fam = family(tokens.alice_id)
    now = utcnow()
    secret = (
        "another secret entirely, 32+ chars long" if mangle == "forged" else DEV_UNSUBSCRIBE_SECRET
    )
    issued = now - timedelta(days=400) if mangle == "expired" else now
    token = UnsubscribeTokens(secret).sign(fam.recipient.id, fam.group.id, Scope.GROUP, issued)
    if mangle == "altered":
        token = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]

    response = api.simulate_post(
        f"/api/unsubscribe/{urllib.parse.quote(token)}", body="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip

    assert response.status_code == (410 if mangle == "expired" else 400)
    assert "Nothing was changed" in response.text
    assert GroupUnsubscribe.select().count() == 0
