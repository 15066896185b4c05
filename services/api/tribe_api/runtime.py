"""Wires the API from the environment: settings, database, broker, Redis client."""

from __future__ import annotations

import logging

import falcon
import redis

from tribe_api.app import create_app
from tribe_shared import db
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import load_or_exit
from tribe_shared.tracing import configure_tracing

log = logging.getLogger(__name__)


def build_app() -> falcon.App:
    settings = load_or_exit()
    configure_tracing(settings.otel_exporter_otlp_endpoint, "tribe-api")
    db.bind(settings.database_url, pooler=settings.database_pooler)
    broker = None
    redis_client = None
    if settings.uses_redis:
        broker = build_broker(settings)
        redis_client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=1, socket_timeout=1
        )
    else:
        log.warning(
            "REDIS_URL is not set: accepted jobs stay pending until a worker's relay runs "
            "(use `tribe-dev` to run everything in one process)"
        )
    return create_app(settings, broker=broker, redis_client=redis_client)
