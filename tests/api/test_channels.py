"""Channel preferences (issue #18 item 4): a recipient chooses email, SMS and WhatsApp per
group; an update's fan-out and a digest go to each chosen channel, one job per channel with its
own status; a phone channel without a phone is a 422 at the API, never a failed job later."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.digests import post_update, reload_schedule, schedule_for
from tests.support.family import group_of, user
from tests.support.http_assertions import assert_json_error, error_fields
from tests.support.waiting import drain
from tribe_shared.contract import DeliveryMethod, JobStatus
from tribe_shared.models import GroupMembership, NotificationJob, Recipient, utcnow
from tribe_shared.outbox import Outbox
from tribe_worker.digest_scan import WINDOW_SETTLE, schedule_due_digests

PHONE = "+447700900123"
RECIPIENTS = "/api/recipients"


@pytest.fixture
def group(tokens, db_url):
    return group_of(user(tokens.alice_id))


def create(api, headers, **fields):
    return api.simulate_post(RECIPIENTS, json={"name": "Nana", **fields}, headers=headers)


def test_a_recipient_chooses_channels_per_group_and_reads_them_back(twilio_api, tokens, group):
    other = group_of(group.owner)
    response = create(
        twilio_api,
        tokens.alice,
        email="nana@example.com",
        phone=PHONE,
        group_ids=[str(group.id), str(other.id)],
        channels=["email", "sms"],
        group_channels={str(other.id): ["whatsapp"]},
    )

    assert response.status_code == 201, response.text
    assert response.json["group_channels"] == {
        str(group.id): ["email", "sms"],
        str(other.id): ["whatsapp"],
    }


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"channels": ["email", "sms"]}, "channels"),
        ({"channels": ["whatsapp"]}, "channels"),
        ({"group_channels": "MINE"}, "group_channels"),
    ],
    ids=["sms", "whatsapp", "per group"],
)
def test_a_phone_channel_without_a_phone_is_a_422_naming_the_field(
    twilio_api, tokens, group, fields, named
):
    if fields.get("group_channels") == "MINE":
        fields = {"group_channels": {str(group.id): ["sms"]}}

    response = create(
        twilio_api, tokens.alice, email="nana@example.com", group_ids=[str(group.id)], **fields
    )

    body = assert_json_error(response, 422)
    assert error_fields(body) == {named}
    assert "no phone number" in body["errors"][0]["message"]
    assert Recipient.select().count() == 0


def test_removing_the_phone_of_a_recipient_texted_for_a_group_is_a_422(twilio_api, tokens, group):
    created = create(
        twilio_api, tokens.alice, email="n@example.com", phone=PHONE,
        group_ids=[str(group.id)], channels=["sms"],
    ).json  # fmt: skip

    response = twilio_api.simulate_patch(
        f"{RECIPIENTS}/{created['id']}", json={"phone": None}, headers=tokens.alice
    )

    assert error_fields(assert_json_error(response, 422)) == {"phone"}
    assert Recipient.get_by_id(created["id"]).phone == PHONE


def test_channels_change_without_touching_the_memberships(twilio_api, tokens, group):
    created = create(
        twilio_api, tokens.alice, email="n@example.com", phone=PHONE, group_ids=[str(group.id)]
    ).json
    assert created["group_channels"] == {str(group.id): ["email"]}

    response = twilio_api.simulate_patch(
        f"{RECIPIENTS}/{created['id']}",
        json={"group_channels": {str(group.id): ["sms", "whatsapp", "sms"]}},
        headers=tokens.alice,
    )

    assert response.status_code == 200, response.text
    assert response.json["group_channels"] == {str(group.id): ["sms", "whatsapp"]}
    assert response.json["group_ids"] == [str(group.id)]


def test_channels_of_a_group_the_recipient_is_not_in_is_a_422(twilio_api, tokens, group):
    other = group_of(group.owner)

    response = create(
        twilio_api, tokens.alice, email="n@example.com", group_ids=[str(group.id)],
        group_channels={str(other.id): ["email"]},
    )  # fmt: skip

    assert error_fields(assert_json_error(response, 422)) == {"group_channels"}


@pytest.mark.parametrize(
    "phone", ["+999123456789", "+4412"], ids=["unassigned country code", "too short"]
)
def test_a_phone_number_that_cannot_exist_is_refused(twilio_api, tokens, phone):
    response = create(twilio_api, tokens.alice, phone=phone)

    assert response.status_code in (400, 422)
    assert "phone" in error_fields(response.json)


def test_an_update_goes_to_each_chosen_channel_as_a_job_of_its_own(
    twilio_api, twilio_worker, twilio_app, twilio, sendgrid, tokens, group
):
    # Given Nana hears from the group by email and SMS, Grandpa by WhatsApp only
    for name, fields in (
        ("Nana", {"email": "nana@example.com", "phone": PHONE, "channels": ["email", "sms"]}),
        ("Grandpa", {"phone": "+447700900456", "channels": ["whatsapp"]}),
    ):
        response = create(
            twilio_api, tokens.alice, group_ids=[str(group.id)], **{"name": name}, **fields
        )
        assert response.status_code == 201, response.text

    # When an update is posted and the worker runs
    response = twilio_api.simulate_post(
        "/api/updates",
        json={"group_id": str(group.id), "content_type": "text", "title": "First steps"},
        headers=tokens.alice,
    )
    assert response.status_code == 202, response.text
    assert response.json["notifications"]["queued"] == 3
    drain(twilio_app.broker, twilio_worker)

    # Then there is one job per channel, each with its own status: the email and the SMS
    # sent, the WhatsApp failed (outside its window, no template) without holding them back
    jobs = {
        (j.recipient.name, j.delivery_method): j
        for j in NotificationJob.select().where(NotificationJob.group == group.id)
    }
    assert set(jobs) == {("Nana", "email"), ("Nana", "sms"), ("Grandpa", "whatsapp")}
    assert jobs["Nana", "email"].status == JobStatus.SENT
    assert jobs["Nana", "sms"].status == JobStatus.SENT
    assert jobs["Nana", "sms"].segments == 1
    sms_job = f"/api/jobs/{jobs['Nana', 'sms'].id}"
    assert twilio_api.simulate_get(sms_job, headers=tokens.alice).json["job"]["segments"] == 1
    assert jobs["Grandpa", "whatsapp"].status == JobStatus.FAILED
    assert "approved template" in jobs["Grandpa", "whatsapp"].failure_reason
    assert [r.recipients for r in sendgrid.requests] == [["nana@example.com"]]
    assert [r.form["To"] for r in twilio.sent] == [PHONE]


def test_a_digest_goes_to_each_chosen_channel_over_the_same_window(
    twilio_app, twilio_worker, twilio, sendgrid, tokens, group
):
    # Given Nana, on email and SMS, has a daily digest with two updates in it
    nana = Recipient.create(
        owner=group.owner_id, name="Nana", email="nana@example.com", phone=PHONE
    )
    GroupMembership.create(group=group.id, recipient=nana.id, channels=["email", "sms"])
    now = utcnow()
    fam = type("Fam", (), {"owner": group.owner, "group": group, "recipient": nana})
    schedule = schedule_for(fam, now - timedelta(days=3))
    post_update(fam, now - timedelta(hours=3), title="Park day", body="Swings!")
    post_update(fam, now - timedelta(hours=2), title="Sleepy")
    schedule.next_digest_scheduled = now - timedelta(minutes=1)
    schedule.save()

    # When the scheduler's tick makes the run's jobs and the worker builds them
    assert schedule_due_digests(Outbox(twilio_app.broker), clock=lambda: now) == 2
    drain(twilio_app.broker, twilio_worker)

    # Then one digest went by email and one by SMS, both with both updates
    jobs = {j.delivery_method: j for j in NotificationJob.select()}
    assert {m: j.status for m, j in jobs.items()} == {
        DeliveryMethod.EMAIL: JobStatus.SENT,
        DeliveryMethod.SMS: JobStatus.SENT,
    }
    (text,) = twilio.sent
    assert text.form["Body"].startswith("Your daily digest from Grandparents\n• Sleepy\n")
    assert "Park day: Swings!" in text.form["Body"]
    assert len(sendgrid.requests) == 1
    assert "Park day" in str(sendgrid.requests[0].body)
    assert reload_schedule(schedule).last_digest_sent == now - WINDOW_SETTLE
