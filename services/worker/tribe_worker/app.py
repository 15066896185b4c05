"""The worker factory: a broker with our middleware and every actor declared on it.

Actors are declared by :func:`build_worker` on the broker it is given, so a test can build a
fresh worker on a ``StubBroker`` and production builds one on Redis, with no import-time state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import dramatiq
from dramatiq.middleware import Retries
from periodiq import PeriodiqMiddleware, cron

from tribe_shared.broker import build_broker
from tribe_shared.contract import Actor, Queue
from tribe_shared.models import utcnow
from tribe_shared.settings import Settings
from tribe_worker.delivery import Delivery, deliver_emails, mark_exhausted
from tribe_worker.emails.providers import EmailProvider, FileEmailProvider
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.middleware import DatabaseConnections
from tribe_worker.relay import relay_pending_jobs

log = logging.getLogger(__name__)

#: Where the development provider writes emails.
DEFAULT_OUTBOX = Path("var/outbox")
#: Periodiq drops tick messages older than this many seconds.
TICK_SKIP_DELAY = 30


@dataclass(frozen=True)
class Worker:
    broker: dramatiq.Broker
    actors: dict[str, dramatiq.Actor]
    delivery: Delivery


def email_provider(settings: Settings, outbox: Path = DEFAULT_OUTBOX) -> EmailProvider:
    """SendGrid when a key is configured, else ``.eml`` files under ``outbox`` (development)."""
    if settings.sendgrid_api_key:
        return SendGridProvider(settings.sendgrid_api_key, settings.sendgrid_api_host)
    log.warning("SENDGRID_API_KEY is not set: emails are written to %s/", outbox)
    return FileEmailProvider(outbox)


def build_worker(
    settings: Settings,
    *,
    broker: dramatiq.Broker | None = None,
    provider: EmailProvider | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Worker:
    """Configure ``broker`` (default: the one of ``REDIS_URL``) and declare every actor on it.

    The database must already be bound (:func:`tribe_shared.db.bind`).
    """
    broker = broker or build_broker(settings)
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            middleware.max_retries = settings.max_retries
    broker.add_middleware(PeriodiqMiddleware(skip_delay=TICK_SKIP_DELAY))
    broker.add_middleware(DatabaseConnections())
    delivery = Delivery(
        provider=provider or email_provider(settings),
        sender=settings.email_from,
        clock=clock,
        backoff_ms=settings.retry_backoff_ms,
    )

    def send_email(job_id: str) -> None:
        deliver_emails([UUID(job_id)], delivery)

    def send_email_batch(job_ids: list[str]) -> None:
        deliver_emails([UUID(job_id) for job_id in job_ids], delivery)

    def mark_job_failed(message: dict, retry_info: dict) -> None:
        (arg,) = message["args"]
        job_ids = arg if isinstance(arg, list) else [arg]
        mark_exhausted([UUID(j) for j in job_ids], retry_info.get("retries", 0), clock)

    def relay(*_tick) -> None:
        relay_pending_jobs(broker, clock=clock)

    def declare(fn, actor: Actor, queue: Queue, **options) -> dramatiq.Actor:
        return dramatiq.actor(
            fn, actor_name=actor.value, queue_name=queue.value, broker=broker, **options
        )

    exhausted = Actor.MARK_JOB_FAILED.value
    actors = [
        declare(send_email, Actor.SEND_EMAIL, Queue.EMAILS, on_retry_exhausted=exhausted),
        declare(
            send_email_batch, Actor.SEND_EMAIL_BATCH, Queue.EMAILS, on_retry_exhausted=exhausted
        ),
        declare(mark_job_failed, Actor.MARK_JOB_FAILED, Queue.EMAILS),
        declare(
            relay,
            Actor.RELAY_PENDING_JOBS,
            Queue.MAINTENANCE,
            periodic=cron("* * * * *"),
            max_retries=0,
        ),
    ]
    return Worker(broker=broker, actors={a.actor_name: a for a in actors}, delivery=delivery)
