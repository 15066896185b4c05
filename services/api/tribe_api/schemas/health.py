"""The health routes' answers."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
)


class DatabaseHealth(BaseModel):
    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class RedisHealth(BaseModel):
    configured: bool
    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class QueueDepth(BaseModel):
    waiting: int
    active: int
    delayed: int
    failed: int


class QueueMetrics(QueueDepth):
    queues: dict[str, QueueDepth]


class CircuitBreakerState(BaseModel):
    state: Literal["closed", "open", "half_open", "unknown"]
    consecutive_failures: int | None = None
    opened_at: float | None = None
    reopens_at: float | None = None
    error: str | None = None


class RedisHealthDetail(RedisHealth):
    circuit_breaker: CircuitBreakerState
    #: Twilio's (SMS and WhatsApp), apart from the email provider's.
    sms_circuit_breaker: CircuitBreakerState
    queue_metrics: QueueMetrics | None
    #: Worker processes with a heartbeat in the last 60 s (None when Redis was not read).
    workers_alive: int | None = None
    warnings: list[str]


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    environment: str
    database: DatabaseHealth
    redis: RedisHealth
    #: What an operator should look at; any makes the status ``degraded``.
    warnings: list[str] = []


class Live(BaseModel):
    status: Literal["alive"]


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    database: DatabaseHealth
    #: Migrations this release expects that the database has not applied yet.
    pending_migrations: list[str]
