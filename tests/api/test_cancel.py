"""DELETE /api/jobs/{id}: a pending or queued job is cancelled and never sent; others are a 409."""

from __future__ import annotations

import uuid
from collections import Counter

import dramatiq
import pytest

from tests.support.family import group_of, recipient_of, user
from tests.support.family_api import UPDATES, job_path, job_row
from tests.support.http_assertions import assert_json_error
from tests.support.jobs import logs_of, reload
from tests.support.waiting import drain
from tribe_shared.contract import JobStatus, Queue
from tribe_shared.models import NotificationJob

NANA, GRANDPA, AUNT = "nana@example.com", "grandpa@example.com", "aunt@example.org"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.QUEUED])
def test_a_pending_or_queued_job_is_cancelled(api, tokens, status):
    job = job_row(user(tokens.alice_id).id, status=status)

    response = api.simulate_delete(job_path(job.id), headers=tokens.alice)

    assert response.status_code == 200, response.text
    assert response.json["job"]["id"] == str(job.id)
    assert response.json["job"]["status"] == "cancelled"
    assert response.json["job"]["processed_at"] is not None
    assert reload(job).status == JobStatus.CANCELLED


@pytest.mark.parametrize(
    "status",
    [
        JobStatus.PROCESSING,
        JobStatus.SENT,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.SKIPPED,
    ],
)
def test_a_job_in_any_other_status_is_a_409_naming_its_status_and_stays_as_it_was(
    api, tokens, status
):
    job = job_row(user(tokens.alice_id).id, status=status)
    before = reload(job).__data__

    response = api.simulate_delete(job_path(job.id), headers=tokens.alice)

    assert status.value in assert_json_error(response, 409)["description"]
    assert reload(job).__data__ == before


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown", "malformed"])
def test_cancelling_an_unknown_or_malformed_job_id_is_a_404(api, tokens, job_id):
    response = api.simulate_delete(job_path(job_id), headers=tokens.alice)

    assert_json_error(response, 404)


# --- a cancelled job is never sent, even when its message is already on the broker ---------


def three_emails(api, tokens) -> dict[str, str]:
    """Alice sends an email to each of her three recipients; their job ids by address."""
    alice = user(tokens.alice_id)
    jobs = {}
    for address in (NANA, GRANDPA, AUNT):
        recipient_of(alice, email=address)
        email = {"to": address, "type": "system", "templateData": {"title": "Hello"}}
        response = api.simulate_post(
            "/api/notifications/send-email", json=email, headers=tokens.alice
        )
        assert response.status_code == 202, response.text
        jobs[address] = response.json["jobId"]
    return jobs


def three_notifications(api, tokens) -> dict[str, str]:
    """Alice posts an update to a group of three recipients; their job ids by address."""
    alice = user(tokens.alice_id)
    group = group_of(alice)
    for address in (NANA, GRANDPA, AUNT):
        recipient_of(alice, name=address.split("@")[0], email=address, groups=(group,))
    update = {"group_id": str(group.id), "content_type": "text", "title": "First steps"}
    response = api.simulate_post(UPDATES, json=update, headers=tokens.alice)
    assert response.status_code == 202, response.text
    return {job.to_email: str(job.id) for job in NotificationJob.select()}


@pytest.fixture
def start_worker(worker_app):
    """Starts a worker on the stub broker when the test says so, not before."""
    started = []

    def start() -> dramatiq.Worker:
        worker = dramatiq.Worker(worker_app.broker, worker_timeout=50, worker_threads=2)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.parametrize("queue_three", [three_emails, three_notifications])
def test_a_cancelled_job_is_never_sent_even_if_its_message_is_queued(
    api, tokens, stub_broker, start_worker, sendgrid, queue_three
):
    jobs = queue_three(api, tokens)
    on_the_broker = [
        job_id
        for raw in stub_broker.queues[Queue.EMAILS].queue
        for arg in dramatiq.Message.decode(raw).args
        for job_id in (arg if isinstance(arg, list) else [arg])
    ]
    assert sorted(on_the_broker) == sorted(jobs.values())

    cancelled = api.simulate_delete(job_path(jobs[GRANDPA]), headers=tokens.alice)
    assert cancelled.status_code == 200, cancelled.text
    drain(stub_broker, start_worker())

    requests = sendgrid.wait_for_requests(2)
    assert Counter(address for r in requests for address in r.recipients) == {NANA: 1, AUNT: 1}
    assert reload(jobs[GRANDPA]).status == JobStatus.CANCELLED
    assert logs_of(jobs[GRANDPA]) == []
    assert {reload(jobs[NANA]).status, reload(jobs[AUNT]).status} == {JobStatus.SENT}
