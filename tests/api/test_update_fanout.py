"""POST /api/updates: an update notifies at once each recipient of its group who is not muted and
has no active digest for it; each of them gets exactly one email, showing the update safely."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta

import dramatiq
import pytest
from falcon import testing

from tests.support.family import group_of, recipient_of, user
from tests.support.family_api import NOTIFICATIONS, digest_schedule, post_update
from tests.support.mail import the_one_email
from tests.support.waiting import drain
from tribe_api.app import create_app
from tribe_shared.contract import (
    NOTIFICATIONS_PER_MESSAGE,
    Actor,
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationType,
    Queue,
)
from tribe_shared.db import database
from tribe_shared.models import (
    DeliveryLog,
    Group,
    GroupMembership,
    NotificationJob,
    Recipient,
    Update,
    utcnow,
)
from tribe_shared.redis_broker import build_broker


@dataclass
class Circle:
    """Alice's "Grandparents" group: three recipients to notify now and three who are not."""

    group: Group
    #: Notified now: Nana; Papa, whose mute has run out; Joe, whose digest is switched off and
    #: whose active digest is for another group.
    notified: dict[str, Recipient]
    muted: Recipient
    in_digest: Recipient
    unreachable: Recipient


@pytest.fixture
def circle(tokens) -> Circle:
    alice = user(tokens.alice_id)
    group, other = group_of(alice, "Grandparents"), group_of(alice, "Friends")
    now = utcnow()

    def member(name, **fields):
        return recipient_of(alice, name=name, groups=(group,), **fields)

    notified = {
        "nana@example.com": member("Nana", email="nana@example.com"),
        "papa@example.com": member(
            "Papa", email="papa@example.com", muted_until=now - timedelta(days=1)
        ),
        "joe@example.org": member("Joe", email="joe@example.org"),
    }
    joe = notified["joe@example.org"]
    digest_schedule(joe, group, is_active=False)
    GroupMembership.create(id=uuid.uuid4(), group=other.id, recipient=joe.id)
    digest_schedule(joe, other, is_active=True)
    in_digest = member("Uncle Bob", email="bob@example.org")
    digest_schedule(in_digest, group, is_active=True)
    recipient_of(alice, name="Outsider", email="outsider@example.org", groups=(other,))
    return Circle(
        group=group,
        notified=notified,
        muted=member("Aunt May", email="may@example.org", muted_until=now + timedelta(days=1)),
        in_digest=in_digest,
        unreachable=member("Cousin", email=None, phone="+14155550100"),
    )


def test_an_update_is_stored_and_the_answer_counts_who_hears_of_it_now_and_who_does_not(
    api, tokens, circle
):
    posted = post_update(
        api,
        tokens.alice,
        circle.group,
        content_type="photo",
        body="She walked!",
        media_urls=["https://photos.example.com/1.jpg"],
    )

    assert posted["notifications"] == {
        "queued": 3,
        "pending": 0,
        "in_digest": 1,
        "muted": 1,
        "unreachable": 1,
        "unsubscribed": 0,
    }
    update = Update.get_by_id(uuid.UUID(posted["update"]["id"]))
    assert (update.group_id, update.content_type, update.title, update.body) == (
        circle.group.id,
        "photo",
        "First steps",
        "She walked!",
    )
    assert update.media_urls == ["https://photos.example.com/1.jpg"]


def test_an_update_makes_one_immediate_email_job_per_notified_recipient_on_the_broker(
    api, tokens, circle, stub_broker
):
    posted = post_update(api, tokens.alice, circle.group)

    jobs = list(NotificationJob.select())
    assert sorted(job.recipient_id for job in jobs) == sorted(
        r.id for r in circle.notified.values()
    )
    for job in jobs:
        assert job.to_email == Recipient.get_by_id(job.recipient_id).email
        assert (job.kind, job.notification_type, job.delivery_method, job.status) == (
            JobKind.NOTIFICATION,
            NotificationType.IMMEDIATE,
            DeliveryMethod.EMAIL,
            JobStatus.QUEUED,
        )
        assert (str(job.group_id), str(job.update_id)) == (
            str(circle.group.id),
            posted["update"]["id"],
        )
        # the row is written without a model instance: every column as a model would write it
        assert (job.owner_id, job.created_by_id) == (tokens.alice_id, tokens.alice_id)
        assert job.content["title"] == "First steps"
        assert job.content["update_id"] == posted["update"]["id"]
        assert job.scheduled_for == job.created_at <= job.queued_at
        assert (job.attempts, job.retry_count, job.lease_losses) == (0, 0, 0)
        assert job.processed_at is None and job.batch_key is None
    (message,) = [dramatiq.Message.decode(m) for m in stub_broker.queues[Queue.EMAILS].queue]
    assert message.actor_name == Actor.DISPATCH_NOTIFICATION
    assert sorted(message.args[0]) == sorted(str(job.id) for job in jobs)


def test_without_a_broker_the_notifications_wait_pending_and_are_counted_so(
    settings, tokens, circle
):
    unbrokered = testing.TestClient(create_app(settings, broker=None))

    posted = post_update(unbrokered, tokens.alice, circle.group)

    assert (posted["notifications"]["queued"], posted["notifications"]["pending"]) == (0, 3)
    assert {job.status for job in NotificationJob.select()} == {JobStatus.PENDING}


def test_each_notified_recipient_gets_exactly_one_email(
    api, tokens, circle, stub_broker, stub_worker, sendgrid
):
    post_update(api, tokens.alice, circle.group)
    drain(stub_broker, stub_worker)

    requests = sendgrid.wait_for_requests(3)
    emails_to = Counter(address for request in requests for address in request.recipients)
    assert emails_to == dict.fromkeys(circle.notified, 1)
    assert {job.status for job in NotificationJob.select()} == {JobStatus.SENT}
    assert DeliveryLog.select().count() == len(circle.notified)


# --- what the email shows ------------------------------------------------------------------


def test_the_email_shows_the_update_its_childs_name_and_links_to_its_photos(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    alice = user(tokens.alice_id)
    group = group_of(alice)
    recipient_of(alice, groups=(group,))
    photos = ["https://photos.example.com/1.jpg", "https://photos.example.com/2.jpg"]

    post_update(
        api,
        tokens.alice,
        group,
        content_type="photo",
        title="First steps",
        body="She walked across the living room today!",
        child_name="Maya",
        media_urls=photos,
    )
    subject, html, text = the_one_email(stub_broker, stub_worker, sendgrid)

    assert "First steps" in subject and "Maya" in subject
    for part in (html, text):
        assert "First steps" in part
        assert "She walked across the living room today!" in part
        assert "Maya" in part
    for photo in photos:
        assert f'href="{photo}"' in html
        assert photo in text


SCRIPT = '<script>alert("hi")</script>'
HEADER = "\r\nBcc: spy@example.com"


def by_update(api, tokens, household_group, recipient):
    """An update (whose title may not hold line breaks) with markup in its title and body."""
    post_update(api, tokens.alice, household_group, title=f"Hi {SCRIPT}", body=f"{SCRIPT}{HEADER}")


def by_notification(api, tokens, household_group, recipient):
    """A notification whose content (free-form) has markup and line breaks in title and body."""
    body = {
        "recipient_id": str(recipient.id),
        "group_id": str(household_group.id),
        "content": {"title": f"Hi {SCRIPT}{HEADER}", "body": f"{SCRIPT}{HEADER}"},
    }
    response = api.simulate_post(NOTIFICATIONS, json=body, headers=tokens.alice)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("post", [by_update, by_notification])
def test_markup_and_line_breaks_in_the_content_arrive_as_harmless_text(
    api, tokens, stub_broker, stub_worker, sendgrid, post
):
    alice = user(tokens.alice_id)
    group = group_of(alice)
    nana = recipient_of(alice, groups=(group,))

    post(api, tokens, group, nana)
    subject, html, _ = the_one_email(stub_broker, stub_worker, sendgrid)

    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("Hi ")
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    (request,) = sendgrid.requests
    assert request.recipients == ["nana@example.com"]


# --- a big group ---------------------------------------------------------------------------

BIG_GROUP = 5_000
#: Updates posted in a row: each adds its jobs and messages to those before.
POSTS = 3


@pytest.fixture
def redis_api(settings, redis_url):
    """The API on the machine's real Redis, under this test's own namespace."""
    broker = build_broker(replace(settings, redis_url=redis_url))
    yield testing.TestClient(create_app(settings, broker=broker)), broker.client
    keys = broker.client.keys(f"{settings.redis_namespace}:*")
    if keys:
        broker.client.delete(*keys)
    broker.close()


def big_group(owner_id, size: int) -> Group:
    """A group of ``size`` recipients, inserted in bulk straight into the database."""
    owner = user(owner_id)
    group = group_of(owner, "Everyone")
    recipients = [
        {"id": uuid.uuid4(), "owner": owner.id, "name": f"R{i}", "email": f"r{i}@example.com"}
        for i in range(size)
    ]
    memberships = [
        {"id": uuid.uuid4(), "group": group.id, "recipient": r["id"]} for r in recipients
    ]
    with database.atomic():
        for start in range(0, size, 500):
            Recipient.insert_many(recipients[start : start + 500]).execute()
            GroupMembership.insert_many(memberships[start : start + 500]).execute()
    return group


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_update_to_5000_recipients_makes_5000_jobs_carried_by_few_messages(
    redis_api, tokens, settings
):
    """PostgreSQL only (the production database), on a real Redis. How fast this is accepted is
    measured by ``bench/update_fanout.py``, not asserted here."""
    api, client = redis_api
    group = big_group(tokens.alice_id, BIG_GROUP)
    queue = f"{settings.redis_namespace}:{Queue.EMAILS}"
    timings = []

    for posts in range(1, POSTS + 1):
        started = time.perf_counter()
        posted = post_update(api, tokens.alice, group)
        timings.append(time.perf_counter() - started)

        update_id = uuid.UUID(posted["update"]["id"])
        assert posted["notifications"]["queued"] == BIG_GROUP
        assert (
            NotificationJob.select().where(NotificationJob.family_update == update_id).count()
            == BIG_GROUP
        )
        # one broker message per NOTIFICATIONS_PER_MESSAGE jobs, every job in exactly one
        assert client.llen(queue) == BIG_GROUP // NOTIFICATIONS_PER_MESSAGE * posts
        carried = [
            job_id
            for raw in client.hvals(f"{queue}.msgs")
            for job_id in dramatiq.Message.decode(raw).args[0]
        ]
        assert len(carried) == len(set(carried)) == BIG_GROUP * posts

    shown = ", ".join(f"{seconds * 1000:.0f} ms" for seconds in timings)
    print(f"\nan update to {BIG_GROUP} recipients was accepted in {shown}")
