"""``GET /api/health``: is the database reachable, is Redis configured and reachable."""

from __future__ import annotations

import time

import falcon
import redis
from spectree import Response

from tribe_api.schemas import Health
from tribe_api.spec import spec
from tribe_shared.db import database
from tribe_shared.settings import Settings


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with database.connection_context():
            database.execute_sql("SELECT 1")
    except Exception as exc:  # any failure means "not reachable"; say which
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"connected": True, "latency_ms": _elapsed_ms(started)}


def check_redis(client: redis.Redis | None) -> dict:
    if client is None:
        return {"configured": False, "connected": False}
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"configured": True, "connected": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"configured": True, "connected": True, "latency_ms": _elapsed_ms(started)}


class HealthResource:
    auth_required = False
    uses_database = False

    def __init__(self, settings: Settings, redis_client: redis.Redis | None):
        self._settings = settings
        self._redis = redis_client

    @spec.validate(resp=Response(HTTP_200=Health, HTTP_503=Health), tags=["health"], security={})
    def on_get(self, req, resp):
        """200 ``ok``, or ``degraded`` when Redis is configured but down; 503 without a database."""
        db_health = check_database()
        redis_health = check_redis(self._redis)
        if not db_health["connected"]:
            status = "down"
        elif redis_health["configured"] and not redis_health["connected"]:
            status = "degraded"
        else:
            status = "ok"
        resp.status = falcon.HTTP_503 if status == "down" else falcon.HTTP_200
        resp.media = {
            "status": status,
            "environment": self._settings.app_env,
            "database": db_health,
            "redis": redis_health,
        }
