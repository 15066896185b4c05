"""Previews: an email type rendered with given data, and a schedule's next digest as it would be
sent now; neither sends, stores nor moves anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from falcon import testing

from tests.support.clocks import Clock
from tests.support.digests import post_update, reload_schedule, schedule_for, tick
from tests.support.family import family
from tests.support.mail import content_of
from tests.support.waiting import drain
from tribe_api.app import create_app
from tribe_shared.models import Group, NotificationJob, utcnow

AGE = timedelta(days=3)


def preview_path(schedule) -> str:
    return f"/api/digest-schedules/{schedule.id}/preview"


def test_a_template_preview_renders_the_type_with_the_given_data_and_stores_nothing(
    api, tokens, sendgrid
):
    # When Alice previews the welcome email with a name
    response = api.simulate_post(
        "/api/templates/welcome/preview",
        json={"templateData": {"name": "Nana", "inviter_name": "Alice"}},
        headers=tokens.alice,
    )

    # Then she sees its subject, HTML and text, in English
    assert response.status_code == 200, response.text
    preview = response.json
    assert preview["type"] == "welcome"
    assert preview["subject"] == "Welcome to Tribe, Nana!"
    assert "Alice invited you" in preview["html"] and "Alice invited you" in preview["text"]
    assert preview["language"] == "en"
    # And nothing was stored or sent
    assert NotificationJob.select().count() == 0
    assert sendgrid.requests == []


def test_a_template_preview_escapes_data_and_takes_a_subject(api, tokens):
    response = api.simulate_post(
        "/api/templates/system/preview",
        json={"templateData": {"message": "<b>hi</b>"}, "subject": "Hello"},
        headers=tokens.alice,
    )

    assert response.status_code == 200, response.text
    assert response.json["subject"] == "Hello"
    assert "&lt;b&gt;hi&lt;/b&gt;" in response.json["html"]


def test_an_unknown_type_is_a_404_and_an_unknown_locale_a_400(api, tokens):
    unknown = api.simulate_post(
        "/api/templates/nope/preview", json={"templateData": {}}, headers=tokens.alice
    )
    assert unknown.status_code == 404
    bad_locale = api.simulate_post(
        "/api/templates/welcome/preview",
        json={"templateData": {}, "locale": "xx-nowhere"},
        headers=tokens.alice,
    )
    assert bad_locale.status_code == 400
    assert [e["field"] for e in bad_locale.json["errors"]] == ["locale"]


def test_a_preview_needs_a_token(api):
    response = api.simulate_post("/api/templates/welcome/preview", json={"templateData": {}})
    assert response.status_code == 401


@pytest.fixture
def fam(db_url, tokens):
    return family(tokens.alice_id, email="nana@example.com")


def test_a_digest_preview_is_the_digest_the_worker_then_sends_and_moves_nothing(
    api, tokens, fam, stub_broker, stub_worker, sendgrid
):
    # Given a schedule with two updates in its open window
    now = utcnow()
    schedule = schedule_for(fam, now - AGE)
    post_update(fam, now - timedelta(days=1), title="Park day", content_type="photo")
    post_update(fam, now - timedelta(hours=2), title="Sleepy", body="Nap at noon")
    before = reload_schedule(schedule)

    # When Alice previews its next digest
    response = api.simulate_get(preview_path(schedule), headers=tokens.alice)

    # Then she sees both updates in the HTML and text forms of the email
    assert response.status_code == 200, response.text
    preview = response.json
    assert preview["would_send"] is True
    assert preview["updates"] == preview["shown"] == 2
    assert preview["ai_summary"] is False
    email = preview["email"]
    assert email["subject"] == "Your daily digest from Grandparents: 2 updates"
    assert email["text"].index("Sleepy") < email["text"].index("Park day")
    assert "Park day" in email["html"]
    # ... and the text message an SMS channel would get, within its segments
    sms = preview["sms"]
    assert sms["text"].startswith("Your daily digest from Grandparents")
    assert sms["text"].index("Sleepy: Nap at noon") < sms["text"].index("Park day")
    assert sms["text"].endswith("Reply STOP to stop these texts.")
    assert (sms["encoding"], sms["segments"]) == ("UCS-2", 2)  # "•" is outside GSM-7
    # And nothing was sent, no job made, and the schedule did not move
    assert sendgrid.requests == []
    assert NotificationJob.select().count() == 0
    after = reload_schedule(schedule)
    assert after.last_digest_sent == before.last_digest_sent
    assert after.next_digest_scheduled == before.next_digest_scheduled
    assert after.updated_at == before.updated_at

    # When the digest is then built and sent
    tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)

    # Then it is what the preview showed
    (request,) = sendgrid.requests
    assert request.body["subject"] == email["subject"]
    assert content_of(request, "text/plain") == email["text"]
    assert content_of(request, "text/html") == email["html"]


def test_a_digest_preview_says_why_nothing_would_be_sent(api, tokens, fam):
    schedule = schedule_for(fam, utcnow() - AGE)
    Group.update(ai_summary=True).where(Group.id == fam.group.id).execute()

    response = api.simulate_get(preview_path(schedule), headers=tokens.alice)

    assert response.status_code == 200, response.text
    assert response.json["would_send"] is False
    assert response.json["reason"] == "No updates since the last digest"
    assert response.json["email"] is None
    assert response.json["ai_summary"] is True


def test_another_users_schedule_cannot_be_previewed(api, tokens, fam):
    schedule = schedule_for(fam, utcnow() - AGE)

    response = api.simulate_get(preview_path(schedule), headers=tokens.bob)

    assert response.status_code == 404


def test_a_digest_preview_uses_the_clock_for_its_window(settings, stub_broker, tokens, fam):
    # Given an update posted an hour from the preview's clock's now
    now = utcnow()
    schedule = schedule_for(fam, now - AGE)
    post_update(fam, now - timedelta(hours=1), title="Earlier")
    post_update(fam, now + timedelta(hours=1), title="Later")
    client = testing.TestClient(create_app(settings, broker=stub_broker, clock=Clock(now)))

    # When previewed now, only the update already posted is in it
    preview = client.simulate_get(preview_path(schedule), headers=tokens.alice).json
    assert preview["updates"] == 1
    assert "Earlier" in preview["email"]["text"] and "Later" not in preview["email"]["text"]


def test_a_template_preview_in_spanish(api, tokens):
    response = api.simulate_post(
        "/api/templates/notification/preview",
        json={"templateData": {"child_name": "Maya", "title": "Primeros pasos"}, "locale": "es"},
        headers=tokens.alice,
    )

    assert response.status_code == 200, response.text
    assert response.json["language"] == "es"
    assert response.json["subject"] == "Noticias de Maya: Primeros pasos"


def test_a_digest_preview_is_in_the_recipients_language(api, tokens, fam):
    fam.recipient.locale = "es-MX"
    fam.recipient.save()
    schedule = schedule_for(fam, utcnow() - AGE)
    post_update(fam, utcnow() - timedelta(hours=1), title="El parque")

    preview = api.simulate_get(preview_path(schedule), headers=tokens.alice).json

    assert preview["email"]["language"] == "es"
    assert preview["email"]["subject"] == "Tu resumen diario de Grandparents: 1 novedad"
