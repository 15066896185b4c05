"""GET /metrics: request counts by route template and status, and the system's state read at
scrape time (jobs, queues, circuit, workers), which never fails the scrape."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
import redis
from falcon import testing

from tests.support.fakes.redis_server import RedisProcess
from tests.support.jobs import email_job
from tests.support.prometheus import Scrape
from tribe_api.app import create_app
from tribe_shared.contract import Actor, DeliveryMethod, JobStatus, Queue
from tribe_shared.models import NotificationJob
from tribe_worker.circuit import email_circuit

#: The scrape's clock: job ages are measured from here.
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def scrape(api: testing.TestClient) -> Scrape:
    response = api.simulate_get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


@pytest.fixture
def clocked_api(settings) -> testing.TestClient:
    """The API without Redis, its clock stopped at :data:`NOW`."""
    return testing.TestClient(create_app(settings, clock=lambda: NOW))


# --- requests -------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_and_status(api, tokens):
    # Given two lookups of unknown jobs, one list, one unauthenticated list and a stray path
    for _ in range(2):
        api.simulate_get(f"/api/jobs/{uuid.uuid4()}", headers=tokens.alice)
    api.simulate_get("/api/jobs", headers=tokens.alice)
    api.simulate_get("/api/jobs")
    api.simulate_get("/no/such/path")

    metrics = scrape(api)

    # Then each is counted under its route template (never the raw path with its id)
    count = "tribe_http_requests_total"
    assert metrics.value(count, method="GET", route="/api/jobs/{job_id}", status="404") == 2
    assert metrics.value(count, method="GET", route="/api/jobs", status="200") == 1
    assert metrics.value(count, method="GET", route="/api/jobs", status="401") == 1
    assert metrics.value(count, method="GET", route="unmatched", status="404") == 1
    assert not [s for s in metrics.samples if "route" in s.labels and "-" in s.labels["route"]]
    latency = "tribe_http_request_duration_seconds_count"
    assert metrics.value(latency, method="GET", route="/api/jobs/{job_id}") == 2
    assert metrics.value(latency, method="GET", route="/api/jobs") == 2


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # the test client's WSGI check
def test_a_made_up_method_is_counted_as_other_not_as_a_series_of_its_own(api):
    api.simulate_request("BREW", "/api/jobs")

    metrics = scrape(api)

    assert [
        s.labels["method"] for s in metrics.samples if s.name == "tribe_http_requests_total"
    ] == ["other"]


def test_metrics_need_no_token(api):
    assert api.simulate_get("/metrics").status_code == 200


def test_the_openapi_document_describes_metrics_as_a_public_text_route(api):
    document = api.simulate_get("/api/openapi.json").json

    operation = document["paths"]["/metrics"]["get"]
    assert operation["security"] == []
    assert "200" in operation["responses"]


# --- jobs -----------------------------------------------------------------------------------


def test_jobs_are_counted_by_status_and_delivery_method(clocked_api):
    # Given jobs of several statuses, two of them SMS
    for status, n in ((JobStatus.SENT, 3), (JobStatus.FAILED, 2), (JobStatus.QUEUED, 1)):
        for _ in range(n):
            email_job(status=status, created_at=NOW - timedelta(seconds=5))
    for _ in range(2):
        job = email_job(status=JobStatus.SENT, created_at=NOW - timedelta(seconds=5))
        NotificationJob.update(delivery_method=DeliveryMethod.SMS).where(
            NotificationJob.id == job.id
        ).execute()

    metrics = scrape(clocked_api)

    assert metrics.labelled("tribe_jobs") == {
        ("email", "sent"): 3,
        ("email", "failed"): 2,
        ("email", "queued"): 1,
        ("sms", "sent"): 2,
    }
    assert metrics.value("tribe_database_up") == 1


def test_overdue_jobs_and_the_oldest_pending_age_come_from_due_unsent_jobs(clocked_api):
    # Given a pending job due 10 minutes ago, a queued one due 2 minutes ago, a pending one due
    # 30 s ago (not yet overdue), one for later, and a sent one long overdue
    email_job(status=JobStatus.PENDING, created_at=NOW - timedelta(minutes=10))
    email_job(status=JobStatus.QUEUED, created_at=NOW - timedelta(minutes=2))
    email_job(status=JobStatus.PENDING, created_at=NOW - timedelta(seconds=30))
    email_job(
        status=JobStatus.PENDING,
        created_at=NOW - timedelta(hours=1),
        scheduled_for=NOW + timedelta(hours=1),
    )
    email_job(status=JobStatus.SENT, created_at=NOW - timedelta(days=1))

    metrics = scrape(clocked_api)

    assert metrics.value("tribe_jobs_overdue") == 2
    assert metrics.value("tribe_oldest_pending_job_age_seconds") == pytest.approx(600)


def test_with_no_pending_job_the_oldest_pending_age_is_zero(clocked_api):
    email_job(status=JobStatus.SENT, created_at=NOW - timedelta(hours=2))

    metrics = scrape(clocked_api)

    assert metrics.value("tribe_oldest_pending_job_age_seconds") == 0
    assert metrics.value("tribe_jobs_overdue") == 0


def test_a_scrape_with_the_database_unreachable_answers_with_database_up_0(api, database_down):
    metrics = scrape(api)

    assert metrics.value("tribe_database_up") == 0
    assert "tribe_jobs" not in metrics.names()
    assert metrics.value("tribe_circuit_state", state="closed") == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_scrape_gives_up_on_a_query_that_waits_and_reports_the_database_down(settings):
    # Given another session holding the jobs table locked against everyone (PostgreSQL: the
    # statement timeout is its own)
    api = testing.TestClient(create_app(settings))
    locker = psycopg2.connect(settings.database_url)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE notification_jobs IN ACCESS EXCLUSIVE MODE")

        # When Prometheus scrapes
        metrics = scrape(api)
    finally:
        locker.rollback()
        locker.close()

    # Then the query was cancelled and the scrape still answered
    assert metrics.value("tribe_database_up") == 0


# --- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
def test_queue_depths_match_the_messages_on_the_broker(redis_api, redis_worker):
    # Given messages with no worker to take them: 3 emails, 1 urgent, 1 for later
    actors = redis_worker.actors
    for i in range(3):
        actors[Actor.SEND_EMAIL].send(f"job-{i}")
    actors[f"{Actor.SEND_EMAIL}_urgent"].send("urgent-job")
    actors[Actor.SEND_EMAIL].send_with_options(args=("later-job",), delay=60_000)

    metrics = scrape(redis_api)

    assert metrics.value("tribe_redis_up") == 1
    depth = metrics.labelled("tribe_queue_messages")
    assert depth[(Queue.EMAILS, "waiting")] == 3
    assert depth[(Queue.EMAILS, "delayed")] == 1
    assert depth[(Queue.URGENT, "waiting")] == 1
    assert depth[(Queue.MAINTENANCE, "waiting")] == 0
    assert {state for _, state in depth} == {"waiting", "delayed", "dead"}


@pytest.mark.redis
def test_an_open_circuit_shows_as_open(redis_api, redis_client, redis_settings):
    email_circuit(redis_client, redis_settings.redis_namespace).hold(60)

    metrics = scrape(redis_api)

    assert metrics.labelled("tribe_circuit_state") == {
        ("closed",): 0,
        ("open",): 1,
        ("half_open",): 0,
    }


@pytest.mark.redis
def test_workers_alive_counts_recent_heartbeats_only(redis_client, redis_settings):
    # Given an API whose clock reads NOW, two workers that beat just now and one silent for two
    # minutes (as METRICS.md says)
    api = testing.TestClient(
        create_app(redis_settings, redis_client=redis_client, clock=lambda: NOW)
    )
    key = f"{redis_settings.redis_namespace}:worker-heartbeats"
    now = NOW.timestamp()
    redis_client.zadd(key, {"host:1": now, "host:2": now - 5, "host:3": now - 120})

    assert scrape(api).value("tribe_workers_alive") == 2


def test_without_redis_the_scrape_reports_redis_down_and_the_in_memory_circuit(api):
    metrics = scrape(api)

    assert metrics.value("tribe_redis_up") == 0
    assert metrics.value("tribe_circuit_state", state="closed") == 1
    assert "tribe_queue_messages" not in metrics.names()


def test_a_scrape_with_redis_stopped_answers_with_redis_up_0(settings):
    # Given the API's own redis-server, stopped after the API was built
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    server = RedisProcess().start()
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    api = testing.TestClient(
        create_app(replace(settings, redis_url=server.url), redis_client=client)
    )
    assert scrape(api).value("tribe_redis_up") == 1
    server.stop()

    metrics = scrape(api)

    assert metrics.value("tribe_redis_up") == 0
    assert metrics.value("tribe_database_up") == 1
    assert "tribe_queue_messages" not in metrics.names()
