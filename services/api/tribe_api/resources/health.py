"""``GET /api/health`` (database, Redis) and ``GET /api/health/redis`` (circuit, queues), each
with the warnings an operator should act on. Public: an answer names what is down, never how
(hosts, ports, users and driver messages go to the log).

Every check is bounded: Redis reads give up after :data:`~tribe_api.system_state.REDIS_TIMEOUT`,
queries after :data:`~tribe_api.system_state.STATEMENT_TIMEOUT_MS` (PostgreSQL), so both answer
within a second even when Redis hangs. Only an unreachable database makes ``/api/health`` 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import falcon
import redis
from spectree import Response

from tribe_api.schemas.errors import Error
from tribe_api.schemas.health import Health, RedisHealthDetail
from tribe_api.spec import spec
from tribe_api.system_state import (
    FAILURE_RATE_WINDOW,
    HEARTBEAT_FRESH_SECONDS,
    BrokerState,
    JobCounts,
    probe_client,
    read_broker_state,
    read_job_health,
)
from tribe_shared.circuit import CLOSED, CircuitState
from tribe_shared.db import database
from tribe_shared.redis_broker import total
from tribe_shared.settings import Settings

log = logging.getLogger(__name__)

#: More messages than this waiting on the broker is worth a warning.
WAITING_WARNING = 1000
#: A failure rate over the last hour above this is worth a warning.
FAILURE_RATE_WARNING = 0.05
#: A due job still ``pending`` after this long is worth a warning.
PENDING_AGE_WARNING = timedelta(minutes=5)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> dict:
    started = time.perf_counter()
    try:
        with database.connection_context():
            database.execute_sql("SELECT 1")
    except Exception as exc:  # any failure means "not reachable"; say which
        log.warning("health: database unreachable: %s: %s", type(exc).__name__, exc)
        return {"connected": False, "error": "unreachable (see the API's log)"}
    return {"connected": True, "latency_ms": _elapsed_ms(started)}


def check_redis(client: redis.Redis | None) -> dict:
    if client is None:
        return {"configured": False, "connected": False}
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("health: Redis unreachable: %s: %s", type(exc).__name__, exc)
        return {"configured": True, "connected": False, "error": "unreachable (see the API's log)"}
    return {"configured": True, "connected": True, "latency_ms": _elapsed_ms(started)}


class HealthChecks:
    """The checks both health routes run, and the warnings they give.

    ``redis_client`` None means Redis is not configured (development); the checks use their own
    client of the same Redis with short timeouts and no retries.
    """

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis | None,
        clock: Callable[[], datetime],
    ):
        self.settings = settings
        #: The checks' own client of the Redis (short timeouts, no retries); None without Redis.
        self.redis_client = probe_client(redis_client) if redis_client is not None else None
        self._clock = clock

    def redis(self) -> dict:
        return check_redis(self.redis_client)

    def broker(self, redis_health: dict) -> tuple[BrokerState | None, list[str]]:
        """Queues, circuit and heartbeats with their warnings (read only if Redis answered)."""
        if not redis_health["configured"]:
            return None, ["Redis is not configured: the broker runs in memory (development)"]
        if not redis_health["connected"]:
            return None, ["Redis is unreachable: new jobs wait as pending for the relay"]
        try:
            state = read_broker_state(
                self.redis_client, self.settings.redis_namespace, now=self._clock().timestamp()
            )
        except redis.RedisError as exc:
            log.warning("health: queue depths unreadable: %s: %s", type(exc).__name__, exc)
            return None, ["Queue depths unreadable (see the API's log)"]
        warnings = []
        if state.circuit.state == CircuitState.OPEN:
            warnings.append("The email circuit breaker is open: sending is paused")
        if state.sms_circuit.state == CircuitState.OPEN:
            warnings.append("The SMS circuit breaker is open: texts are paused")
        if total(state.queues)["waiting"] > WAITING_WARNING:
            warnings.append(f"More than {WAITING_WARNING} messages are waiting")
        if state.workers_alive == 0:
            warnings.append(
                f"No worker heartbeat in the last {HEARTBEAT_FRESH_SECONDS:g} s: "
                "no worker is running"
            )
        for task, age in state.late_tasks(time.time()).items():
            since = "has never run" if age == float("inf") else f"last ran {age:.0f} s ago"
            warnings.append(
                f"The scheduler's task {task} {since}: is the scheduler (periodiq) running?"
            )
        return state, warnings

    def jobs(self, health: JobCounts | None = None) -> list[str]:
        """Warnings from the jobs table: the last hour's failure rate, the oldest pending job
        (``health``: as already read, else read now)."""
        now = self._clock()
        try:
            health = health or read_job_health(now)
        except Exception as exc:  # whatever the database raised, the jobs are unreadable
            log.warning("health: jobs unreadable: %s: %s", type(exc).__name__, exc)
            return ["Jobs unreadable (see the API's log)"]
        warnings = []
        rate = health.failure_rate()
        if rate is not None and rate > FAILURE_RATE_WARNING:
            hours = FAILURE_RATE_WINDOW / timedelta(hours=1)
            warnings.append(
                f"{rate:.0%} of the jobs finished in the last {hours:g} h failed "
                f"(above {FAILURE_RATE_WARNING:.0%})"
            )
        if health.oldest_pending_age(now) > PENDING_AGE_WARNING.total_seconds():
            minutes = PENDING_AGE_WARNING / timedelta(minutes=1)
            warnings.append(
                f"A due job has been pending for more than {minutes:g} minutes: "
                "is the scheduler's relay running?"
            )
        return warnings


class HealthResource:
    auth_required = False
    uses_database = False

    def __init__(self, checks: HealthChecks):
        self._checks = checks

    @spec.validate(
        resp=Response(HTTP_200=Health, HTTP_413=Error, HTTP_503=Health),
        tags=["health"],
        security={},
    )
    def on_get(self, req, resp):
        """200 ``ok``, or ``degraded`` with warnings (Redis down, circuit open, backlog, failure
        rate, stale pending jobs, no worker); 503 ``down`` without a database."""
        db_health = check_database()
        redis_health = self._checks.redis()
        _, warnings = self._checks.broker(redis_health)
        if not redis_health["configured"]:
            # Development runs without Redis on purpose: not a problem for this summary.
            warnings = [w for w in warnings if "not configured" not in w]
        if db_health["connected"]:
            warnings = self._checks.jobs() + warnings
            status = "degraded" if warnings else "ok"
        else:
            status = "down"
        resp.status = falcon.HTTP_503 if status == "down" else falcon.HTTP_200
        resp.media = {
            "status": status,
            "environment": self._checks.settings.app_env,
            "database": db_health,
            "redis": redis_health,
            "warnings": warnings,
        }


class RedisHealthResource:
    auth_required = False
    uses_database = False

    def __init__(self, checks: HealthChecks):
        self._checks = checks

    @spec.validate(
        resp=Response(HTTP_200=RedisHealthDetail, HTTP_413=Error), tags=["health"], security={}
    )
    def on_get(self, req, resp):
        """The broker's Redis: reachability, the email and SMS circuit breakers, queue depths,
        and the warnings of ``/api/health`` (the jobs table's included)."""
        body = self._checks.redis()
        state, warnings = self._checks.broker(body)
        if state is not None:
            body["circuit_breaker"] = state.circuit.as_dict()
            body["sms_circuit_breaker"] = state.sms_circuit.as_dict()
            body["queue_metrics"] = {**total(state.queues), "queues": state.queues}
            body["workers_alive"] = state.workers_alive
        else:
            # Without Redis (development) no breaker is shared, and the stand-in never opens.
            closed = CLOSED.as_dict()
            body["circuit_breaker"] = {"state": "unknown"} if body["configured"] else closed
            body["sms_circuit_breaker"] = body["circuit_breaker"]
            body["queue_metrics"] = None
        body["warnings"] = warnings + self._checks.jobs()
        resp.media = body
