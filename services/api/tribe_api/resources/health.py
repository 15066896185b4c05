"""``GET /api/health`` (database, Redis) and ``GET /api/health/redis`` (circuit, queues)."""

from __future__ import annotations

import time

import falcon
import redis
from spectree import Response

from tribe_api.schemas import Health, RedisHealthDetail
from tribe_api.spec import spec
from tribe_shared.circuit import CircuitBreaker, CircuitState
from tribe_shared.db import database
from tribe_shared.queues import queue_depths, total
from tribe_shared.settings import Settings

#: More messages than this waiting on the broker is worth a warning.
WAITING_WARNING = 1000


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


class RedisHealthResource:
    auth_required = False
    uses_database = False

    def __init__(self, settings: Settings, redis_client: redis.Redis | None, circuit):
        self._namespace = settings.redis_namespace
        self._redis = redis_client
        self._circuit: CircuitBreaker = circuit

    @spec.validate(resp=Response(HTTP_200=RedisHealthDetail), tags=["health"], security={})
    def on_get(self, req, resp):
        """The broker's Redis: reachability, the email circuit breaker, queue depths, warnings."""
        body = check_redis(self._redis)
        warnings = []
        if not body["configured"]:
            warnings.append("Redis is not configured: the broker runs in memory (development)")
        elif not body["connected"]:
            warnings.append("Redis is unreachable: new jobs wait as pending for the relay")
        try:
            body["circuit_breaker"] = self._circuit.status().as_dict()
        except redis.RedisError as exc:
            body["circuit_breaker"] = {"state": "unknown", "error": str(exc)}
        if body["circuit_breaker"]["state"] == CircuitState.OPEN:
            warnings.append("The email circuit breaker is open: sending is paused")
        body["queue_metrics"] = None
        if body["connected"]:
            try:
                depths = queue_depths(self._redis, self._namespace)
                body["queue_metrics"] = {**total(depths), "queues": depths}
            except redis.RedisError as exc:
                warnings.append(f"Queue depths unreadable: {exc}")
        if body["queue_metrics"] and body["queue_metrics"]["waiting"] > WAITING_WARNING:
            warnings.append(f"More than {WAITING_WARNING} messages are waiting")
        body["warnings"] = warnings
        resp.media = body
