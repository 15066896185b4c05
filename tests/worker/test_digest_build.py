"""The ``build_digest`` actor: a group's updates over the digest's window, filtered and capped,
rendered and sent with the rules of every email; each update in exactly one digest."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.digests import post_update, reload_schedule, schedule_for, tick
from tests.support.fakes.sendgrid import Reply
from tests.support.family import family
from tests.support.jobs import logs_of, reload
from tests.support.mail import content_of
from tests.support.waiting import drain
from tribe_shared.contract import DeliveryStatus, JobStatus
from tribe_shared.models import Group, Recipient, utcnow
from tribe_worker.compose import EARLIER_DIGEST_WAIT_SECONDS
from tribe_worker.deferrals import Deferred
from tribe_worker.delivery import deliver
from tribe_worker.digest_scan import WINDOW_SETTLE

#: The schedules of these tests were created this long ago.
AGE = timedelta(days=3)


@pytest.fixture
def fam(db_url):
    return family(email="nana@example.com")


@pytest.fixture
def schedule(fam):
    return schedule_for(fam, utcnow() - AGE)


def test_a_digest_sends_the_groups_updates_since_the_schedule_began_and_closes_its_window(
    fam, schedule, stub_broker, stub_worker, sendgrid
):
    # Given updates to the group since the schedule began, one before it, one to another group
    now = utcnow()
    post_update(fam, now - AGE - timedelta(hours=1), title="Too old")
    post_update(fam, now - timedelta(days=2), title="Rolled over", content_type="milestone")
    post_update(fam, now - timedelta(days=1), title="Park day", content_type="photo")
    post_update(fam, now - timedelta(hours=1), title="Sleepy", body="Nap at noon")
    other = Group.create(id=uuid.uuid4(), owner=fam.owner.id, name="Friends")
    post_update(fam, now - timedelta(hours=2), title="Elsewhere", group=other)

    # When the digest is due and the worker builds it
    job = tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)

    # Then one email went to the recipient with the three updates, newest first
    (request,) = sendgrid.requests
    assert request.recipients == ["nana@example.com"]
    assert request.job_ids == [str(job.id)]
    assert request.body["subject"] == "Your daily digest from Grandparents: 3 updates"
    text = content_of(request, "text/plain")
    assert text.index("Sleepy") < text.index("Park day") < text.index("Rolled over")
    assert "Nap at noon" in text
    for absent in ("Too old", "Elsewhere", "more update"):
        assert absent not in text
    assert "Park day" in content_of(request, "text/html")
    # And the job is sent and logged, and the schedule's window closed at the job's end
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert [log.status for log in logs_of(job)] == [DeliveryStatus.SENT]
    assert reload_schedule(schedule).last_digest_sent == now - WINDOW_SETTLE


def test_each_update_is_in_exactly_one_digest(fam, schedule, stub_broker, stub_worker, sendgrid):
    # Given an update before the first digest's window closes (yesterday)
    yesterday = utcnow() - timedelta(days=1)
    post_update(fam, yesterday - timedelta(hours=3), title="Before")

    # When the digest is made, and another update is posted while it is being built
    first = tick(schedule, stub_broker, yesterday)
    post_update(fam, yesterday + timedelta(milliseconds=1), title="During")
    drain(stub_broker, stub_worker)
    # And the next digest comes a day later
    second = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    # Then the first holds only the earlier update and the second only the later one
    one, two = sendgrid.requests
    assert one.job_ids == [str(first.id)] and two.job_ids == [str(second.id)]
    assert "Before" in content_of(one, "text/plain")
    assert "During" not in content_of(one, "text/plain")
    assert "During" in content_of(two, "text/plain")
    assert "Before" not in content_of(two, "text/plain")


def test_only_the_chosen_content_types_and_the_newest_few_are_shown_with_a_count_of_the_rest(
    fam, stub_broker, stub_worker, sendgrid
):
    schedule = schedule_for(
        fam,
        utcnow() - AGE,
        frequency="weekly",
        delivery_day=1,
        include_content_types=["photo", "milestone"],
        max_updates_per_digest=2,
    )
    now = utcnow()
    for hours, kind in enumerate(["photo", "text", "milestone", "photo", "video", "photo"]):
        post_update(fam, now - timedelta(hours=10 - hours), content_type=kind, title=f"U{hours}")

    tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)

    (request,) = sendgrid.requests
    text = content_of(request, "text/plain")
    # Four photos and milestones match: the newest two are shown, two more are counted
    assert request.body["subject"] == "Your weekly digest from Grandparents: 4 updates"
    assert "U5" in text and "U3" in text
    for hidden in ("U0", "U1", "U2", "U4"):
        assert hidden not in text
    assert "and 2 more updates" in text
    assert "and 2 more updates" in content_of(request, "text/html")


@pytest.mark.parametrize(
    ("frequency", "day", "heading"),
    [("daily", None, "Your daily digest"), ("monthly", 15, "Your monthly digest")],
)
def test_the_wording_follows_the_frequency(
    fam, stub_broker, stub_worker, sendgrid, frequency, day, heading
):
    schedule = schedule_for(fam, utcnow() - AGE, frequency=frequency, delivery_day=day)
    post_update(fam, utcnow() - timedelta(hours=1))
    tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.requests
    assert request.body["subject"] == f"{heading} from Grandparents: 1 update"
    assert heading in content_of(request, "text/html")


def test_update_text_arrives_as_harmless_text(fam, schedule, stub_broker, stub_worker, sendgrid):
    post_update(fam, utcnow() - timedelta(hours=1), title="<b>Hi</b>", body="<script>x()</script>")
    tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.requests
    html = content_of(request, "text/html")
    assert "<script>" not in html and "<b>Hi</b>" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<script>x()</script>" in content_of(request, "text/plain")


def test_an_empty_window_is_skipped_without_an_email_and_closed(
    fam, schedule, stub_broker, stub_worker, sendgrid
):
    now = utcnow()
    job = tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)
    job = reload(job)
    assert job.status == JobStatus.SKIPPED
    assert job.failure_reason == "No updates since the last digest"
    assert sendgrid.requests == []
    assert reload_schedule(schedule).last_digest_sent == now - WINDOW_SETTLE


def test_a_muted_recipient_gets_no_digest_and_the_updates_wait_for_the_next(
    fam, schedule, stub_broker, stub_worker, sendgrid
):
    # Given a muted recipient with an update in yesterday's window
    yesterday = utcnow() - timedelta(days=1)
    post_update(fam, yesterday - timedelta(hours=1), title="While muted")
    Recipient.update(muted_until=utcnow() + timedelta(hours=12)).where(
        Recipient.id == fam.recipient.id
    ).execute()

    # When yesterday's digest is built
    muted = tick(schedule, stub_broker, yesterday)
    drain(stub_broker, stub_worker)

    # Then it is skipped, nothing is sent, and the window stays open
    assert reload(muted).status == JobStatus.SKIPPED
    assert reload(muted).failure_reason == "muted"
    assert sendgrid.requests == []
    assert reload_schedule(schedule).last_digest_sent is None

    # And once the mute is over, the next digest carries the update
    Recipient.update(muted_until=None).where(Recipient.id == fam.recipient.id).execute()
    tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.requests
    assert "While muted" in content_of(request, "text/plain")


def test_a_failed_digest_leaves_its_updates_for_the_next_one(
    fam, schedule, stub_broker, stub_worker, sendgrid
):
    # Given yesterday's digest, which the provider refused for good
    yesterday = utcnow() - timedelta(days=1)
    post_update(fam, yesterday - timedelta(hours=1), title="Kept")
    sendgrid.script(Reply(400, body={"errors": [{"message": "bad address"}]}))
    failed = tick(schedule, stub_broker, yesterday)
    drain(stub_broker, stub_worker)
    assert reload(failed).status == JobStatus.FAILED
    assert reload_schedule(schedule).last_digest_sent is None

    # When today's is built, it still carries the update
    now = utcnow()
    tick(schedule, stub_broker, now)
    drain(stub_broker, stub_worker)
    assert "Kept" in content_of(sendgrid.requests[-1], "text/plain")
    assert reload_schedule(schedule).last_digest_sent == now - WINDOW_SETTLE


def test_a_transient_failure_is_retried_like_any_email(
    fam, schedule, stub_broker, stub_worker, sendgrid
):
    post_update(fam, utcnow() - timedelta(hours=1))
    sendgrid.script(Reply(500))
    job = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert job.retry_count == 1
    assert [log.status for log in logs_of(job)] == [
        DeliveryStatus.TRANSIENT_FAILURE,
        DeliveryStatus.SENT,
    ]


def test_a_newer_digest_waits_for_an_earlier_one_of_its_schedule_so_nothing_is_sent_twice(
    fam, schedule, worker_app, stub_broker, sendgrid
):
    # Given two digests made before either was built (the first was held up), an update in
    # both windows and one only in the newer
    now = utcnow()
    post_update(fam, now - timedelta(hours=1), title="Early")
    older = tick(schedule, stub_broker, now - timedelta(seconds=90))
    post_update(fam, now - timedelta(seconds=75), title="Late")
    newer = tick(schedule, stub_broker, now)
    stub_broker.flush_all()

    # When a worker takes the newer one first, it goes back to wait, sending nothing
    with pytest.raises(Deferred) as deferred:
        deliver([newer.id], worker_app.delivery)
    assert deferred.value.delay >= EARLIER_DIGEST_WAIT_SECONDS * 1000
    assert sendgrid.requests == []
    waiting = reload(newer)
    assert (waiting.status, waiting.attempts) == (JobStatus.QUEUED, 0)

    # Then the older one sends its window, and the newer one, after it, only what came since
    deliver([older.id], worker_app.delivery)
    deliver([newer.id], worker_app.delivery)
    first, second = sendgrid.requests
    assert first.job_ids == [str(older.id)] and second.job_ids == [str(newer.id)]
    assert "Early" in content_of(first, "text/plain") and "Late" not in content_of(
        first, "text/plain"
    )
    assert "Late" in content_of(second, "text/plain") and "Early" not in content_of(
        second, "text/plain"
    )
    assert reload(older).status == reload(newer).status == JobStatus.SENT


def test_a_newer_digest_after_an_earlier_one_failed_carries_its_updates(
    fam, schedule, worker_app, stub_broker, sendgrid
):
    # Given two digests of one schedule, the earlier one refused by the provider
    now = utcnow()
    post_update(fam, now - timedelta(hours=1), title="Early")
    older = tick(schedule, stub_broker, now - timedelta(seconds=90))
    newer = tick(schedule, stub_broker, now)
    stub_broker.flush_all()
    sendgrid.script(Reply(400, body={"errors": [{"message": "Bad address."}]}))
    deliver([older.id], worker_app.delivery)
    assert reload(older).status == JobStatus.FAILED

    # When the newer one is built, the update the failed one held is in it
    deliver([newer.id], worker_app.delivery)
    assert "Early" in content_of(sendgrid.requests[-1], "text/plain")
    assert reload(newer).status == JobStatus.SENT


def test_an_update_committed_after_its_digest_was_built_is_in_the_next_one(
    fam, schedule, worker_app, stub_broker, sendgrid
):
    # Given yesterday's digest, built and sent
    yesterday = utcnow() - timedelta(days=1)
    post_update(fam, yesterday - timedelta(hours=1), title="Settled")
    sent = tick(schedule, stub_broker, yesterday)
    stub_broker.flush_all()
    deliver([sent.id], worker_app.delivery)
    assert "Settled" in content_of(sendgrid.requests[-1], "text/plain")

    # When an update whose request began a second before that scan commits only now
    post_update(fam, yesterday - timedelta(seconds=1), title="Slow commit")

    # Then it was not in yesterday's digest, and it is in today's
    today = tick(schedule, stub_broker, utcnow())
    stub_broker.flush_all()
    deliver([today.id], worker_app.delivery)
    text = content_of(sendgrid.requests[-1], "text/plain")
    assert "Slow commit" in text and "Settled" not in text
