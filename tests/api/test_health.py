"""GET /api/health: ok, degraded without Redis, down (503) without the database."""

from __future__ import annotations

import falcon
import redis
from falcon import testing

from tests.support.fakes.redis_server import free_port
from tests.support.workers import heartbeat, scheduler_ran
from tribe_api.app import create_app


def test_health_is_ok_with_the_database_connected_and_redis_not_configured(api):
    response = api.simulate_get("/api/health")

    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["database"]["connected"] is True
    assert body["redis"] == {"configured": False, "connected": False}


def test_health_is_ok_when_the_configured_redis_answers_and_a_worker_is_alive(settings, redis_url):
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
    heartbeat(client, settings.redis_namespace)
    scheduler_ran(client, settings.redis_namespace)
    api = testing.TestClient(create_app(settings, redis_client=client))

    response = api.simulate_get("/api/health")

    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["redis"]["configured"] is True
    assert response.json["redis"]["connected"] is True
    assert response.json["warnings"] == []


def test_health_is_degraded_when_the_configured_redis_is_unreachable(settings):
    client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    api = testing.TestClient(create_app(settings, redis_client=client))

    response = api.simulate_get("/api/health")

    assert response.status_code == 200
    body = response.json
    assert body["status"] == "degraded"
    assert body["database"]["connected"] is True
    assert body["redis"]["configured"] is True
    assert body["redis"]["connected"] is False
    assert body["redis"]["error"]


def test_health_is_down_with_503_when_the_database_is_unreachable(api, database_down):
    response = api.simulate_get("/api/health")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith(falcon.MEDIA_JSON)
    body = response.json
    assert body["status"] == "down"
    assert body["database"]["connected"] is False
    assert body["database"]["error"]


def test_a_public_health_answer_names_what_is_down_never_how(api, database_down, caplog):
    # Given a database that cannot be reached (its host, port and user are in DATABASE_URL)
    # When anyone asks for the health
    response = api.simulate_get("/api/health")

    # Then the answer says the database is unreachable, and only the log says how
    assert response.json["database"] == {
        "connected": False,
        "error": "unreachable (see the API's log)",
    }
    for detail in ("127.0.0.1", "postgres", "Operational", "connection"):
        assert detail not in response.text
    assert any("127.0.0.1" in record.getMessage() for record in caplog.records)
