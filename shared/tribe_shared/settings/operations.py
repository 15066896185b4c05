"""Running it: the database and Redis, the numbers (rates, retries, timings, the port), and
what running it for years needs (retention, the database pooler, tracing, the console)."""

from __future__ import annotations

from tribe_shared.settings.constants import (
    DATABASE_SCHEMES,
    DEFAULT_CIRCUIT_FAILURE_THRESHOLD,
    DEFAULT_CIRCUIT_RESET_SECONDS,
    DEFAULT_CONSOLE_SESSION_MINUTES,
    DEFAULT_CONTENT_RETENTION_DAYS,
    DEFAULT_DATABASE_URL,
    DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND,
    DEFAULT_JOB_LEASE_SECONDS,
    DEFAULT_JOB_RETENTION_DAYS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_OUTBOX_POLL_SECONDS,
    DEFAULT_PORT,
    DEFAULT_QUEUED_STALE_SECONDS,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_USER_WRITE_RATE_PER_MINUTE,
    POOLER_MODES,
    REDIS_SCHEMES,
)
from tribe_shared.settings.parsing import ConfigError, _check_url, _Env


def _stores(env: _Env, app_env: str) -> dict:
    """The database and Redis."""
    database_url = env.get("DATABASE_URL")
    if database_url is None:
        if app_env != "development":
            raise ConfigError(
                f"A database is required when APP_ENV={app_env} - DATABASE_URL must be configured"
            )
        database_url = DEFAULT_DATABASE_URL
    _check_url("DATABASE_URL", database_url, DATABASE_SCHEMES)
    redis_url = env.get("REDIS_URL")
    if redis_url is None and app_env == "production":
        raise ConfigError("Redis is required for production - REDIS_URL must be configured")
    if redis_url is not None:
        _check_url("REDIS_URL", redis_url, REDIS_SCHEMES)
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_namespace": _namespace(env.get("REDIS_NAMESPACE", "tribe")),
    }


def _namespace(value: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in value):
        raise ConfigError(
            f"REDIS_NAMESPACE may hold only letters, digits, '-', '_', '.': {value!r}"
        )
    return value


def _tuning(env: _Env) -> dict:
    """The numbers: rates, retries, timings, the port."""
    number = env.number
    return {
        "email_rate_limit_per_second": number(
            "EMAIL_RATE_LIMIT_PER_SECOND", DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND, float, 0.001
        ),
        "max_retries": number("MAX_RETRIES", DEFAULT_MAX_RETRIES, int, 0),
        "port": number("PORT", DEFAULT_PORT, int, 1, 65535),
        "retry_backoff_ms": number("RETRY_BACKOFF_MS", DEFAULT_RETRY_BACKOFF_MS, int, 1),
        "circuit_failure_threshold": number(
            "CIRCUIT_FAILURE_THRESHOLD", DEFAULT_CIRCUIT_FAILURE_THRESHOLD, int, 1
        ),
        "circuit_reset_seconds": number(
            "CIRCUIT_RESET_SECONDS", DEFAULT_CIRCUIT_RESET_SECONDS, float, 0.1
        ),
        "outbox_poll_seconds": number(
            "OUTBOX_POLL_SECONDS", DEFAULT_OUTBOX_POLL_SECONDS, float, 0.1, 60
        ),
        "job_lease_seconds": number("JOB_LEASE_SECONDS", DEFAULT_JOB_LEASE_SECONDS, int, 1),
        "queued_stale_seconds": number(
            "QUEUED_STALE_SECONDS", DEFAULT_QUEUED_STALE_SECONDS, int, 1
        ),
        "user_write_rate_per_minute": number(
            "USER_WRITE_RATE_PER_MINUTE", DEFAULT_USER_WRITE_RATE_PER_MINUTE, int, 1
        ),
    }


def _operations(env: _Env) -> dict:
    """Running it for years: retention, the database pooler, tracing."""
    number = env.number
    pooler = env.get("DATABASE_POOLER", "none").lower()
    if pooler not in POOLER_MODES:
        raise ConfigError(
            f"DATABASE_POOLER must be one of {', '.join(POOLER_MODES)}, not {pooler!r}"
        )
    grafana_url = env.get("GRAFANA_URL")
    if grafana_url is not None:
        _check_url("GRAFANA_URL", grafana_url, ("http", "https"))
    otel_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if otel_endpoint is not None:
        _check_url("OTEL_EXPORTER_OTLP_ENDPOINT", otel_endpoint, ("http", "https"))
    return {
        "job_retention_days": number("JOB_RETENTION_DAYS", DEFAULT_JOB_RETENTION_DAYS, int, 1),
        "content_retention_days": number(
            "CONTENT_RETENTION_DAYS", DEFAULT_CONTENT_RETENTION_DAYS, int, 1
        ),
        "database_pooler": pooler,
        "otel_exporter_otlp_endpoint": otel_endpoint,
        "console_session_minutes": number(
            "CONSOLE_SESSION_MINUTES", DEFAULT_CONSOLE_SESSION_MINUTES, int, 1, 720
        ),
        "grafana_url": grafana_url,
    }
