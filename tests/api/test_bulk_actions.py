"""POST /api/jobs/retry and /api/jobs/cancel: every job a filter matches, retried or cancelled
by the service role in bounded batches on the worker, each job recorded; a dry run counts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.family import group_of, recipient_of, update_in, user
from tests.support.family_api import job_row
from tests.support.http_assertions import assert_json_error
from tests.support.jobs import SYSTEM_EMAIL, reload
from tests.support.waiting import drain
from tribe_shared import bulk
from tribe_shared.contract import JobKind, JobStatus, Queue
from tribe_shared.models import BulkAction, BulkActionJob, NotificationJob, utcnow
from tribe_shared.outbox import Outbox

RETRY, CANCEL = "/api/jobs/retry", "/api/jobs/cancel"


def failed_email(creator, *, to="nana@example.com", request_id=None) -> NotificationJob:
    return job_row(
        creator,
        status=JobStatus.FAILED,
        to_email=to,
        content=SYSTEM_EMAIL,
        failure_reason="SendGrid 500",
        retry_count=3,
        processed_at=utcnow(),
        request_id=request_id,
    )


def statuses(jobs) -> list[str]:
    return [reload(job).status for job in jobs]


def test_a_dry_run_counts_the_failed_jobs_the_filter_matches_and_changes_nothing(api, tokens):
    alice = user(tokens.alice_id).id
    outage = [failed_email(alice, request_id="bulk-1") for _ in range(3)]
    failed_email(alice, request_id="bulk-2")
    job_row(alice, status=JobStatus.SENT, request_id="bulk-1")

    response = api.simulate_post(
        RETRY, json={"request_id": "bulk-1", "dry_run": True}, headers=tokens.service_key
    )

    assert response.status_code == 200, response.text
    assert response.json["action"]["matched"] == 3
    assert response.json["action"]["status"] == "dry_run"
    assert statuses(outage) == ["failed"] * 3
    assert BulkAction.select().count() == 0


def test_failed_jobs_of_a_request_are_retried_in_bulk_and_sent_each_one_recorded(
    api, tokens, stub_broker, stub_worker, sendgrid
):
    # Given last night's outage: three failed emails of one bulk request, one of another
    alice = user(tokens.alice_id).id
    outage = [failed_email(alice, to=f"r{i}@example.com", request_id="bulk-1") for i in range(3)]
    other = failed_email(alice, request_id="bulk-2")

    # When the operator retries the request's failures
    response = api.simulate_post(RETRY, json={"request_id": "bulk-1"}, headers=tokens.service_key)

    # Then an action is recorded and the worker retries them: each is sent, and recorded
    assert response.status_code == 202, response.text
    action = response.json["action"]
    assert (action["action"], action["matched"]) == ("retry", 3)
    assert response.headers["location"] == f"/api/jobs/actions/{action['id']}"
    drain(stub_broker, stub_worker, Queue.MAINTENANCE)
    drain(stub_broker, stub_worker, Queue.EMAILS)
    assert statuses(outage) == ["sent"] * 3
    assert all(reload(job).retry_count == 0 for job in outage)
    assert reload(other).status == JobStatus.FAILED
    recorded = {row.job_id for row in BulkActionJob.select()}
    assert recorded == {job.id for job in outage}
    progress = api.simulate_get(response.headers["location"], headers=tokens.service_key)
    assert progress.json["action"]["status"] == "done"
    assert progress.json["action"]["acted"] == 3
    assert progress.json["action"]["requested_by"].startswith("api:service_role")


def test_an_updates_scheduled_fan_out_is_cancelled_in_bulk_and_never_sent(
    api, tokens, stub_broker, stub_worker
):
    owner = user(tokens.alice_id)
    group = group_of(owner)
    update = update_in(group)
    later = utcnow() + timedelta(hours=2)
    fan_out = [
        job_row(
            owner.id,
            kind=JobKind.NOTIFICATION,
            status=JobStatus.PENDING,
            recipient=recipient_of(owner, email=f"r{i}@example.com").id,
            group=group.id,
            family_update=update.id,
            scheduled_for=later,
        )
        for i in range(4)
    ]
    already_sent = job_row(owner.id, status=JobStatus.SENT, family_update=update.id)

    response = api.simulate_post(CANCEL, json={"update_id": str(update.id)}, headers=tokens.service)

    assert response.status_code == 202, response.text
    drain(stub_broker, stub_worker, Queue.MAINTENANCE)
    assert statuses(fan_out) == ["cancelled"] * 4
    assert reload(already_sent).status == JobStatus.SENT
    action = BulkAction.get_by_id(uuid.UUID(response.json["action"]["id"]))
    assert (action.status, action.matched, action.acted) == ("done", 4, 4)


def test_a_run_works_in_bounded_batches_and_goes_on_where_it_stopped(api, tokens):
    alice = user(tokens.alice_id).id
    jobs = [
        job_row(alice, status=JobStatus.PENDING, scheduled_for=utcnow() + timedelta(days=1))
        for _ in range(7)
    ]
    action = bulk.start("cancel", {"to": "nana@example.com"}, "test", utcnow())

    done = bulk.run(action.id, Outbox(None), utcnow, batch_size=3)

    assert (done.status, done.matched, done.acted) == ("done", 7, 7)
    assert statuses(jobs) == ["cancelled"] * 7
    assert BulkActionJob.select().count() == 7


def test_a_user_token_is_refused_and_nothing_changes(api, tokens):
    job = failed_email(user(tokens.alice_id).id)

    for path in (RETRY, CANCEL):
        response = api.simulate_post(path, json={"dry_run": True}, headers=tokens.alice)
        assert assert_json_error(response, 403)["code"] == "service_role_required"
    assert reload(job).status == JobStatus.FAILED


@pytest.mark.parametrize("body", [{"status": "lost"}, {"created_after": "yesterday"}, {"x": 1}])
def test_a_bad_filter_is_a_400(api, tokens, body):
    response = api.simulate_post(RETRY, json=body, headers=tokens.service_key)

    assert_json_error(response, 400)


def test_an_unknown_action_is_a_404(api, tokens):
    response = api.simulate_get(f"/api/jobs/actions/{uuid.uuid4()}", headers=tokens.service_key)

    assert_json_error(response, 404)
