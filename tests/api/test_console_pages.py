"""The console's pages over the API's own queries: keyset pages through the job list, a bad
filter said plainly, a bulk confirmation that only counts, a suppression lifted by its form, a
dead letter replayed, a schedule's next digest previewed."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import dramatiq

from tests.support.console import FORM, csrf_of, signed_in
from tests.support.family import group_of, recipient_of, update_in, user
from tests.support.family_api import digest_schedule, job_row
from tests.support.jobs import SYSTEM_EMAIL, reload
from tests.support.waiting import wait_until
from tribe_shared.contract import JobStatus, Queue
from tribe_shared.models import BulkAction, DigestSchedule, NotificationJob, Suppression, utcnow
from tribe_shared.redis_broker import dead_letter_of, read_dead_letters


def job_ids(html: str) -> list[str]:
    return re.findall(r'<a href="/admin/jobs/([0-9a-f-]{36})"', html)


def test_the_job_list_pages_by_keyset_in_either_order_without_overlap(api, tokens):
    owner = user(tokens.alice_id).id
    start = utcnow() - timedelta(hours=1)
    for i in range(60):
        job_row(owner, created_at=start + timedelta(seconds=i))
    session = signed_in(api, tokens)

    for order in ("desc", "asc"):
        first = api.simulate_get("/admin/jobs", params={"order": order}, headers=session)
        next_link = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1)
        second = api.simulate_get(next_link.replace("&amp;", "&"), headers=session)

        assert (first.status_code, second.status_code) == (200, 200)
        assert len(job_ids(first.text)) == 50 and len(job_ids(second.text)) == 10
        assert not set(job_ids(first.text)) & set(job_ids(second.text))
        assert 'id="next-page"' not in second.text


def test_a_bad_filter_is_said_plainly(api, tokens):
    response = api.simulate_get(
        "/admin/jobs", params={"created_after": "last tuesday"}, headers=signed_in(api, tokens)
    )

    assert response.status_code == 400
    assert "created_after" in re.search(r'id="filter-error">([^<]+)<', response.text).group(1)


def test_the_bulk_confirmation_counts_and_changes_nothing(api, tokens):
    owner = user(tokens.alice_id).id
    for _ in range(3):
        job_row(owner, status=JobStatus.FAILED, to_email="nana@example.com")
    job_row(owner, status=JobStatus.FAILED, to_email="joe@example.com")

    response = api.simulate_get(
        "/admin/bulk",
        params={"action": "retry", "to": "nana@example.com"},
        headers=signed_in(api, tokens),
    )

    assert response.status_code == 200
    assert "<strong>3</strong> job(s) will be sent again" in response.text
    assert BulkAction.select().count() == 0


def test_a_suppression_is_lifted_from_its_page(api, tokens):
    Suppression.create(email="nana@example.com", reason="bounced", suppressed_at=utcnow())
    session = signed_in(api, tokens)
    page = api.simulate_get("/admin/suppressions", headers=session)
    assert "nana@example.com" in page.text

    lifted = api.simulate_post(
        "/admin/suppressions",
        body=f"csrf={csrf_of(page.text)}&email=nana%40example.com",
        headers={**FORM, **session},
    )

    assert lifted.status_code == 303
    assert Suppression.select().count() == 0


def test_a_dead_letter_is_listed_and_replayed_as_a_retry_of_its_failed_job(
    redis_api, redis_worker, tokens
):
    # Given a job whose message the broker dead-lettered
    broker = redis_worker.broker
    job = job_row(user(tokens.alice_id).id, status=JobStatus.FAILED, content=SYSTEM_EMAIL)
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=Queue.EMAILS.value,
            actor_name="send_email",
            args=(str(job.id),),
            kwargs={},
            options={},
        )
    )
    consumer = broker.consume(Queue.EMAILS.value, prefetch=1, timeout=100)
    fetched = wait_until(lambda: next(consumer), what="the message fetched")
    consumer.nack(fetched)
    consumer.close()
    NotificationJob.update(dead_letter=dead_letter_of(sent.asdict())).where(
        NotificationJob.id == job.id
    ).execute()
    session = signed_in(redis_api, tokens)

    # When the operator finds it and replays it
    page = redis_api.simulate_get("/admin/dead-letters", headers=session)
    assert f'href="/admin/jobs/{job.id}"' in page.text
    location = re.search(r'name="location" value="([^"]+)"', page.text).group(1)
    replayed = redis_api.simulate_post(
        "/admin/dead-letters",
        body=urlencode({"csrf": csrf_of(page.text), "location": location, "job_ids": job.id}),
        headers={**FORM, **session},
    )

    # Then the job is queued again and the dead letter is gone
    assert replayed.status_code == 303
    assert reload(job).status == JobStatus.QUEUED
    assert read_dead_letters(broker.client, broker.namespace) == []


def test_a_schedules_next_digest_is_previewed_without_sending_or_changing_anything(api, tokens):
    owner = user(tokens.alice_id)
    group = group_of(owner)
    schedule = digest_schedule(recipient_of(owner, email="nana@example.com"), group)
    schedule.created_at = utcnow() - timedelta(hours=1)
    schedule.next_digest_scheduled = utcnow() + timedelta(minutes=30)
    schedule.save()
    later = utcnow() - timedelta(minutes=10)
    update_in(group, "First steps", created_at=later)
    update_in(group, "A new tooth", created_at=later + timedelta(seconds=1))
    session = signed_in(api, tokens)

    listing = api.simulate_get("/admin/digests", headers=session)
    preview = api.simulate_get(f"/admin/digests/{schedule.id}", headers=session)

    assert f'href="/admin/digests/{schedule.id}"' in listing.text
    assert preview.status_code == 200
    assert "<strong>2</strong> update(s)" in preview.text
    assert preview.text.index("A new tooth") < preview.text.index("First steps")
    assert re.search(r'id="preview-subject">.*Subject:', preview.text)
    assert DigestSchedule.get_by_id(schedule.id).last_digest_sent is None
    assert NotificationJob.select().count() == 0


def test_the_overview_lists_the_recent_bulk_actions(api, tokens):
    action = BulkAction.create(
        action="retry", requested_by="console:Ada", status="done", matched=200, acted=200
    )

    overview = api.simulate_get("/admin", headers=signed_in(api, tokens))

    assert f'href="/admin/actions/{action.id}"' in overview.text
    assert "200 of 200" in overview.text
