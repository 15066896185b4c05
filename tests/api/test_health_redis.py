"""GET /api/health/redis: is the broker's Redis reachable, what state is the email circuit in,
how deep are the queues, and what should an operator worry about."""

from __future__ import annotations

import pytest
import redis
from falcon import testing

from tests.support.fakes.redis_server import free_port
from tests.support.family import family
from tests.support.workers import heartbeat, scheduler_ran
from tribe_api.app import create_app
from tribe_shared.contract import Actor, Queue
from tribe_shared.redis_broker import QUEUES
from tribe_worker.circuit import email_circuit, sms_circuit

HEALTH_URL = "/api/health/redis"
DEPTHS = {"waiting", "active", "delayed", "failed"}


def health(api) -> dict:
    response = api.simulate_get(HEALTH_URL)
    assert response.status_code == 200, response.text
    return response.json


@pytest.mark.redis
def test_a_healthy_redis_reports_latency_a_closed_circuit_and_empty_queues(
    redis_api, redis_client, redis_settings
):
    heartbeat(redis_client, redis_settings.redis_namespace)
    scheduler_ran(redis_client, redis_settings.redis_namespace)

    body = health(redis_api)

    assert body["configured"] is True
    assert body["connected"] is True
    assert isinstance(body["latency_ms"], int | float) and body["latency_ms"] >= 0
    closed = {"state": "closed", "consecutive_failures": 0, "opened_at": None, "reopens_at": None}
    assert body["circuit_breaker"] == body["sms_circuit_breaker"] == closed
    metrics = body["queue_metrics"]
    assert {k: metrics[k] for k in DEPTHS} == dict.fromkeys(DEPTHS, 0)
    assert set(metrics["queues"]) == set(QUEUES)
    for depths in metrics["queues"].values():
        assert depths == dict.fromkeys(DEPTHS, 0)
    assert body["workers_alive"] == 1
    assert body["warnings"] == []


@pytest.mark.redis
def test_waiting_and_delayed_counts_reflect_the_messages_on_the_broker(
    redis_api, redis_worker, tokens
):
    # Given messages enqueued with no worker to take them: 3 emails, 1 urgent, 1 for later
    actors = redis_worker.actors
    for i in range(3):
        actors[Actor.SEND_EMAIL].send(f"job-{i}")
    actors[f"{Actor.SEND_EMAIL}_urgent"].send("urgent-job")
    actors[Actor.SEND_EMAIL].send_with_options(args=("later-job",), delay=60_000)

    metrics = health(redis_api)["queue_metrics"]

    assert (metrics["waiting"], metrics["delayed"], metrics["active"]) == (4, 1, 0)
    assert metrics["queues"][Queue.EMAILS] == {"waiting": 3, "active": 0, "delayed": 1, "failed": 0}
    assert metrics["queues"][Queue.URGENT]["waiting"] == 1


@pytest.mark.redis
def test_jobs_accepted_by_the_api_show_as_waiting(redis_api, tokens):
    fam = family(tokens.alice_id)
    for _ in range(2):
        response = redis_api.simulate_post(
            "/api/notifications",
            json={"recipient_id": str(fam.recipient.id), "group_id": str(fam.group.id)},
            headers=tokens.alice,
        )
        assert response.status_code == 202, response.text

    assert health(redis_api)["queue_metrics"]["queues"][Queue.EMAILS]["waiting"] == 2


@pytest.mark.redis
def test_a_circuit_opened_by_a_worker_shows_as_open_with_a_warning(
    redis_api, redis_worker, redis_settings
):
    for _ in range(redis_settings.circuit_failure_threshold):
        redis_worker.delivery.gates.circuit.record_failure()

    body = health(redis_api)

    breaker = body["circuit_breaker"]
    assert breaker["state"] == "open"
    assert breaker["consecutive_failures"] == redis_settings.circuit_failure_threshold
    assert breaker["reopens_at"] == pytest.approx(
        breaker["opened_at"] + redis_settings.circuit_reset_seconds
    )
    assert any("circuit" in warning for warning in body["warnings"])


@pytest.mark.redis
def test_a_circuit_held_by_the_provider_shows_as_open(redis_api, redis_client, redis_settings):
    email_circuit(redis_client, redis_settings.redis_namespace).hold(60)

    body = health(redis_api)

    assert body["circuit_breaker"]["state"] == "open"
    assert any("circuit" in warning for warning in body["warnings"])


@pytest.mark.redis
def test_twilio_s_circuit_shows_apart_from_the_email_one(redis_api, redis_client, redis_settings):
    sms_circuit(redis_client, redis_settings.redis_namespace).hold(60)

    body = health(redis_api)

    assert body["sms_circuit_breaker"]["state"] == "open"
    assert body["circuit_breaker"]["state"] == "closed"
    assert "The SMS circuit breaker is open: texts are paused" in body["warnings"]


def test_an_unreachable_redis_is_reported_not_raised(settings):
    # Built as the API's runtime builds its client.
    unreachable = redis.Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1, socket_timeout=1
    )
    api = testing.TestClient(create_app(settings, redis_client=unreachable))

    body = health(api)

    assert body["configured"] is True
    assert body["connected"] is False
    assert body["error"]
    assert body["queue_metrics"] is None
    assert body["circuit_breaker"]["state"] == "unknown"
    assert any("unreachable" in warning for warning in body["warnings"])


def test_without_redis_there_is_a_warning_and_no_queue_metrics(api):
    body = health(api)

    assert body["configured"] is False
    assert body["connected"] is False
    assert body["queue_metrics"] is None
    assert body["circuit_breaker"]["state"] == "closed"
    assert any("not configured" in warning for warning in body["warnings"])


def test_redis_health_needs_no_token(api):
    assert api.simulate_get(HEALTH_URL).status_code == 200
