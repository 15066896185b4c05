"""The worker factory: a broker with our middleware and every actor declared on it.

Actors are declared by :func:`build_worker` on the broker it is given, so a test can build a
fresh worker on a ``StubBroker`` and production builds one on Redis, with no import-time state.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, Retries
from periodiq import PeriodiqMiddleware, cron

from tribe_shared.broker import BROKER_DOWN_ERRORS, build_broker, dead_letter_of
from tribe_shared.circuit import email_circuit
from tribe_shared.contract import (
    DELIVERY_ACTORS,
    URGENT_SUFFIX,
    Actor,
    Queue,
    worker_heartbeats_key,
)
from tribe_shared.db import DATABASE_DOWN_ERRORS, is_unreachable
from tribe_shared.models import utcnow
from tribe_shared.settings import Settings
from tribe_worker.delivery import Deferred, Delivery, deliver, mark_exhausted
from tribe_worker.digest_scheduler import schedule_due_digests
from tribe_worker.emails.providers import EmailProvider, FileEmailProvider
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.gates import Gates
from tribe_worker.journal import Attempt
from tribe_worker.maintenance import reap_stuck_jobs
from tribe_worker.metrics import count_transition
from tribe_worker.middleware import DatabaseConnections, WorkerHeartbeat
from tribe_worker.ratelimit import RateLimiter
from tribe_worker.relay import relay_pending_jobs
from tribe_worker.sms import DisabledSmsProvider, SmsProvider

log = logging.getLogger(__name__)

#: Where the development provider writes emails.
DEFAULT_OUTBOX = Path("var/outbox")
#: Periodiq drops tick messages older than this many seconds.
TICK_SKIP_DELAY = 30
#: A relay tick repeats every ``OUTBOX_POLL_SECONDS`` for this long (less than its minute).
TICK_SECONDS = 45.0
#: Extra messages a digest tick sends when more schedules are due than one batch: each runs the
#: scan too, on another worker thread or process, taking batches the others have not locked.
DIGEST_TICK_HELPERS = 3
#: Longest a worker thread keeps trying to record a provider's answer while the database is down.
MAX_RECORD_PATIENCE = 60.0
#: Dramatiq actor priorities: lower runs first among messages a worker has prefetched.
NORMAL_PRIORITY = 10
URGENT_PRIORITY = 0


class TickActor(dramatiq.Actor):
    """A periodic actor, whose tick is skipped, not fatal, when the broker cannot be reached.

    periodiq sends ticks from its main loop, where one exception ends the scheduler process
    (and with it every later tick, unless something restarts it). The next minute's tick does
    the same work, so a tick lost to a Redis outage only delays it.
    """

    def send_with_options(self, **kwargs):
        try:
            return super().send_with_options(**kwargs)
        except BROKER_DOWN_ERRORS as exc:
            log.warning("%s: tick not sent, the broker is unreachable: %s", self.actor_name, exc)
            return None


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
    sms: SmsProvider | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Worker:
    """Configure ``broker`` (default: the one of ``REDIS_URL``) and declare every actor on it.

    The database must already be bound (:func:`tribe_shared.db.bind`).
    """
    broker = broker or build_broker(settings)
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            middleware.max_retries = settings.max_retries
    broker.add_middleware(PeriodiqMiddleware(skip_delay=TICK_SKIP_DELAY))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DatabaseConnections())
    redis_client = broker.client if isinstance(broker, RedisBroker) else None
    namespace = settings.redis_namespace
    if redis_client is not None:
        broker.add_middleware(WorkerHeartbeat(redis_client, key=worker_heartbeats_key(namespace)))
    delivery = Delivery(
        provider=provider or email_provider(settings),
        sms=sms or DisabledSmsProvider(),
        gates=Gates(
            redis_client,
            limiter=RateLimiter(
                redis_client,
                key=f"{namespace}:ratelimit:email",
                rate_per_second=settings.email_rate_limit_per_second,
                sleep=sleep,
            ),
            circuit=email_circuit(
                redis_client,
                namespace,
                failure_threshold=settings.circuit_failure_threshold,
                reset_seconds=settings.circuit_reset_seconds,
                on_transition=count_transition,
            ),
        ),
        sender=settings.email_from,
        clock=clock,
        backoff_ms=settings.retry_backoff_ms,
        public_base_url=settings.public_base_url,
        # Well inside the lease: the reaper must not take back a job still being recorded.
        record_patience=min(settings.job_lease_seconds / 2, MAX_RECORD_PATIENCE),
    )

    def run_delivery(arg: str | list[str]) -> None:
        job_ids = arg if isinstance(arg, list) else [arg]
        message = CurrentMessage.get_current_message()
        # The Retries middleware retries while the retries so far are below the maximum.
        retries = message.options.get("retries", 0) if message else 0
        actor_name = message.actor_name if message else ""
        attempt = Attempt(actor_name, will_retry=retries < settings.max_retries)
        try:
            deliver([UUID(job_id) for job_id in job_ids], delivery, attempt)
        except Deferred as deferred:
            # A re-enqueued copy keeps its retry count: waiting at a gate is not a retry.
            broker.enqueue(CurrentMessage.get_current_message(), delay=deferred.delay_ms)
        except DATABASE_DOWN_ERRORS as exc:
            if not is_unreachable(exc):
                raise
            # Nor is waiting for the database: an outage must not fail jobs. A job claimed
            # before it struck stays ``processing`` until the reaper's lease takes it back.
            log.warning("database unreachable, delivery deferred: %s", exc)
            delay_ms = int(settings.outbox_poll_seconds * 1000 * random.uniform(1.0, 2.0))
            broker.enqueue(CurrentMessage.get_current_message(), delay=delay_ms)

    def mark_job_failed(message: dict, retry_info: dict) -> None:
        (arg,) = message["args"]
        job_ids = arg if isinstance(arg, list) else [arg]
        dead_letter = dead_letter_of(message)
        mark_exhausted(
            [UUID(j) for j in job_ids],
            retry_info.get("retries", 0),
            dead_letter,
            clock,
            actor=message["actor_name"],
        )

    def relay(ends_at: float | None = None) -> None:
        """Hand pending jobs over; the minute's tick repeats every OUTBOX_POLL_SECONDS.

        Each repeat is a delayed message of its own, not a sleeping thread, so a worker that is
        shutting down never waits for the rest of the minute.
        """
        ends_at = ends_at or time.time() + TICK_SECONDS
        relay_pending_jobs(broker, clock=clock)
        if time.time() + settings.outbox_poll_seconds < ends_at:
            relay_actor.send_with_options(
                args=(ends_at,), delay=int(settings.outbox_poll_seconds * 1000)
            )

    def reap(*_) -> None:
        reap_stuck_jobs(
            broker,
            clock=clock,
            lease=timedelta(seconds=settings.job_lease_seconds),
            stale=timedelta(seconds=settings.queued_stale_seconds),
        )

    def schedule_digests(helping: bool = False) -> None:
        def call_for_help() -> None:
            if not helping:
                for _ in range(DIGEST_TICK_HELPERS):
                    digests_actor.send(True)

        schedule_due_digests(broker, clock=clock, on_backlog=call_for_help)

    def declare(fn, name: str, queue: Queue, **options) -> dramatiq.Actor:
        return dramatiq.actor(fn, actor_name=name, queue_name=queue.value, broker=broker, **options)

    exhausted = Actor.MARK_JOB_FAILED.value
    actors = [declare(mark_job_failed, Actor.MARK_JOB_FAILED.value, Queue.EMAILS)]
    for actor in DELIVERY_ACTORS:
        actors.append(
            declare(
                run_delivery,
                actor.value,
                Queue.EMAILS,
                priority=NORMAL_PRIORITY,
                on_retry_exhausted=exhausted,
            )
        )
        actors.append(
            declare(
                run_delivery,
                actor.value + URGENT_SUFFIX,
                Queue.URGENT,
                priority=URGENT_PRIORITY,
                on_retry_exhausted=exhausted,
            )
        )
    every_minute = {"periodic": cron("* * * * *"), "max_retries": 0, "actor_class": TickActor}
    relay_actor = declare(relay, Actor.RELAY_PENDING_JOBS.value, Queue.MAINTENANCE, **every_minute)
    actors.append(relay_actor)
    actors.append(declare(reap, Actor.REAP_STUCK_JOBS.value, Queue.MAINTENANCE, **every_minute))
    digests_actor = declare(
        schedule_digests, Actor.SCHEDULE_DUE_DIGESTS.value, Queue.MAINTENANCE, **every_minute
    )
    actors.append(digests_actor)
    return Worker(broker=broker, actors={a.actor_name: a for a in actors}, delivery=delivery)
