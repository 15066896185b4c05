"""The worker factory: a broker with our middleware and every actor of :mod:`tribe_worker.actors`
bound to it, by the table :data:`ACTORS`.

Nothing happens at import: a test builds a worker on a ``StubBroker``, production on Redis
(:mod:`tribe_worker.main`), each with its own providers and clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial, update_wrapper
from pathlib import Path

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from periodiq import PeriodiqMiddleware, cron

from tribe_shared import tracing
from tribe_shared.circuit import email_circuit_key, sms_circuit_key
from tribe_shared.contract import (
    URGENT_SUFFIX,
    Actor,
    Queue,
    scheduler_runs_key,
    worker_heartbeats_key,
)
from tribe_shared.emails.unsubscribe_links import UnsubscribeLinks
from tribe_shared.models import utcnow
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import BROKER_DOWN_ERRORS, build_broker, waiting_list_key
from tribe_shared.settings import Settings
from tribe_shared.unsubscribe import UnsubscribeTokens
from tribe_worker import actors
from tribe_worker.circuit import CircuitBreaker
from tribe_worker.compose import Composer
from tribe_worker.deferrals import outage_delay, use_deferrals
from tribe_worker.delivery import Delivery
from tribe_worker.emails.providers import EmailProvider, FileEmailProvider, Sender
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.emails.smtp import SmtpProvider
from tribe_worker.fast_lane import FastLaneWatch
from tribe_worker.gates import Gates, OpenGates
from tribe_worker.metrics import count_transition
from tribe_worker.middleware import DatabaseConnections, PeriodicRuns, Tracing, WorkerHeartbeat
from tribe_worker.ratelimit import RateLimiter
from tribe_worker.sms import DisabledSmsProvider, SmsProvider
from tribe_worker.sms.twilio import TwilioProvider
from tribe_worker.summaries import summarizer_from

log = logging.getLogger(__name__)

#: Where Twilio posts a message's status callbacks (under ``API_PUBLIC_URL``).
TWILIO_WEBHOOK_PATH = "/api/webhooks/twilio"
#: Where the development provider writes emails.
DEFAULT_OUTBOX = Path("var/outbox")
#: Periodiq drops tick messages older than this many seconds.
TICK_SKIP_DELAY = 30
#: Longest a worker thread keeps trying to record a provider's answer while the database is down.
MAX_RECORD_PATIENCE = 60.0
#: Dramatiq actor priorities: lower runs first among messages a worker has prefetched.
NORMAL_PRIORITY = 10
URGENT_PRIORITY = 0
DEFAULT_PRIORITY = 0


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


_DELIVERY = {"on_retry_exhausted": Actor.MARK_JOB_FAILED.value}
_EVERY_MINUTE = {"periodic": cron("* * * * *"), "max_retries": 0, "actor_class": TickActor}

#: Each actor: its name, its function, its queue and its options. A delivery actor (one with
#: ``on_retry_exhausted``) is bound twice: as named on ``emails``, and with ``_urgent`` on the
#: urgent lane at a higher priority, so urgent work overtakes a backlog.
ACTORS = (
    (Actor.SEND_EMAIL, actors.send_email, Queue.EMAILS, _DELIVERY),
    (Actor.SEND_EMAIL_BATCH, actors.send_email_batch, Queue.EMAILS, _DELIVERY),
    (Actor.DISPATCH_NOTIFICATION, actors.dispatch_notification, Queue.EMAILS, _DELIVERY),
    (Actor.BUILD_DIGEST, actors.build_digest, Queue.EMAILS, _DELIVERY),
    (Actor.MARK_JOB_FAILED, actors.mark_job_failed, Queue.EMAILS, {}),
    (Actor.RELAY_PENDING_JOBS, actors.relay_pending_jobs, Queue.MAINTENANCE, _EVERY_MINUTE),
    (Actor.REAP_STUCK_JOBS, actors.reap_stuck_jobs, Queue.MAINTENANCE, _EVERY_MINUTE),
    (Actor.SCHEDULE_DUE_DIGESTS, actors.schedule_due_digests, Queue.MAINTENANCE, _EVERY_MINUTE),
    (Actor.APPLY_RETENTION, actors.apply_retention, Queue.MAINTENANCE, _EVERY_MINUTE),
    (Actor.RUN_BULK_ACTION, actors.run_bulk_action, Queue.MAINTENANCE, {}),
)


@dataclass(frozen=True)
class Worker:
    broker: dramatiq.Broker
    actors: dict[str, dramatiq.Actor]
    context: actors.Context

    @property
    def delivery(self) -> Delivery:
        return self.context.delivery


def email_provider(settings: Settings, outbox: Path = DEFAULT_OUTBOX) -> EmailProvider:
    """The SMTP relay with ``EMAIL_PROVIDER=smtp``; else SendGrid when a key is configured,
    else ``.eml`` files under ``outbox`` (development)."""
    if settings.email_provider == "smtp":
        return smtp_provider(settings)
    if settings.sendgrid_api_key:
        return SendGridProvider(settings.sendgrid_api_key, settings.sendgrid_api_host)
    log.warning("SENDGRID_API_KEY is not set: emails are written to %s/", outbox)
    return FileEmailProvider(outbox)


def smtp_provider(settings: Settings) -> SmtpProvider:
    """The SMTP relay of ``SMTP_*``."""
    assert settings.smtp_host is not None  # the settings require it when SMTP is used
    return SmtpProvider(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )


def failover_provider(settings: Settings, primary: EmailProvider) -> EmailProvider | None:
    """The SMTP relay that sends while SendGrid's circuit is open (``EMAIL_FAILOVER_TO_SMTP``),
    if asked for and the primary provider is not SMTP itself."""
    if not settings.email_failover_to_smtp or primary.name == SmtpProvider.name:
        return None
    return smtp_provider(settings)


def sms_provider(settings: Settings) -> SmsProvider:
    """Twilio when an account is configured, else the provider that fails every text clearly."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        return DisabledSmsProvider()
    callback = settings.api_public_url and f"{settings.api_public_url}{TWILIO_WEBHOOK_PATH}"
    return TwilioProvider(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        sms_from=settings.twilio_sms_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        whatsapp_from=settings.twilio_whatsapp_from,
        base_url=settings.twilio_api_base_url,
        status_callback=callback,
    )


def build_worker(
    settings: Settings,
    *,
    broker: dramatiq.Broker | None = None,
    redis_client: redis.Redis | None = None,
    provider: EmailProvider | None = None,
    failover: EmailProvider | None = None,
    sms: SmsProvider | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Worker:
    """Configure ``broker`` (default: the one of ``REDIS_URL``) and bind every actor to it.

    ``redis_client`` is the Redis the gates and the heartbeat share with the other workers
    (default: the Redis broker's own; with an in-memory broker, none: development). The database
    must already be bound (:func:`tribe_shared.db.bind`). ``failover`` sends while the email
    circuit is open (default: the SMTP relay, when ``EMAIL_FAILOVER_TO_SMTP`` asks for it).
    """
    broker = broker or build_broker(settings)
    if redis_client is None and isinstance(broker, RedisBroker):
        redis_client = broker.client
    fast_lane = _add_middleware(broker, settings, redis_client, clock)
    provider = provider or email_provider(settings)
    composer = Composer(
        email=provider,
        failover=failover or failover_provider(settings, provider),
        summarizer=summarizer_from(settings),
        sms=sms or sms_provider(settings),
        sender=Sender(settings.email_from, settings.email_from_name),
        public_base_url=settings.public_base_url,
        links=_unsubscribe_links(settings),
        whatsapp_templates=_whatsapp_templates(settings),
    )
    delivery = Delivery(
        composer=composer,
        gates=_gates(settings, redis_client, sleep),
        clock=clock,
        backoff_ms=settings.retry_backoff_ms,
        # Well inside the lease: the reaper must not take back a job still being recorded.
        record_patience=min(settings.job_lease_seconds / 2, MAX_RECORD_PATIENCE),
        fast_lane_waiting=fast_lane.waiting,
        sms_gates=_sms_gates(settings, redis_client, sleep),
    )
    context = actors.Context(broker, Outbox(broker), delivery, settings, clock)
    return Worker(broker=broker, actors=bind_actors(broker, context), context=context)


def _add_middleware(
    broker: dramatiq.Broker, settings: Settings, redis_client, clock
) -> FastLaneWatch:
    """Our middleware on ``broker``: deferrals (with Dramatiq's retries), periodiq's, the
    current message, a database connection per message, the fast lane's watch, tracing if on,
    and with Redis the worker's heartbeat and the periodic tasks' last runs."""
    use_deferrals(
        broker,
        max_retries=settings.max_retries,
        outage_delay_ms=outage_delay(settings.outbox_poll_seconds),
    )
    broker.add_middleware(PeriodiqMiddleware(skip_delay=TICK_SKIP_DELAY))
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DatabaseConnections())
    fast_lane = FastLaneWatch()
    broker.add_middleware(fast_lane)
    if tracing.enabled():
        broker.add_middleware(Tracing())
    if redis_client is not None:
        key = worker_heartbeats_key(settings.redis_namespace)
        broker.add_middleware(
            WorkerHeartbeat(redis_client, key=key, clock=lambda: clock().timestamp())
        )
        runs = scheduler_runs_key(settings.redis_namespace)
        broker.add_middleware(PeriodicRuns(redis_client, key=runs))
    return fast_lane


def bind_actors(broker: dramatiq.Broker, context: actors.Context) -> dict[str, dramatiq.Actor]:
    """Declare each actor of :data:`ACTORS` on ``broker``, its function given ``context``."""
    bound = {}
    for name, fn, queue, options in ACTORS:
        lanes = [(name.value, queue, DEFAULT_PRIORITY)]
        if "on_retry_exhausted" in options:
            lanes = [
                (name.value, queue, NORMAL_PRIORITY),
                (name.value + URGENT_SUFFIX, Queue.URGENT, URGENT_PRIORITY),
            ]
        for actor_name, lane, priority in lanes:
            bound[actor_name] = dramatiq.actor(
                update_wrapper(partial(fn, context), fn),
                actor_name=actor_name,
                queue_name=lane.value,
                broker=broker,
                priority=priority,
                **options,
            )
    return bound


def _unsubscribe_links(settings: Settings) -> UnsubscribeLinks | None:
    """The links update and digest emails carry, if the API's public URL is known."""
    if settings.api_public_url is None:
        return None
    tokens = UnsubscribeTokens(settings.unsubscribe_secret)
    return UnsubscribeLinks(tokens, settings.api_public_url, settings.unsubscribe_mailto)


def _whatsapp_templates(settings: Settings) -> dict[str, str]:
    configured = {
        "update": settings.twilio_whatsapp_update_template,
        "digest": settings.twilio_whatsapp_digest_template,
    }
    return {kind: sid for kind, sid in configured.items() if sid}


def _sms_gates(settings: Settings, client, sleep) -> Gates | OpenGates:
    """Twilio's own rate limit (``SMS_RATE_LIMIT_PER_SECOND``) and circuit breaker, shared
    through Redis like the email provider's and apart from them."""
    return _lane_gates(
        settings, client, sleep, "sms", settings.sms_rate_limit_per_second, sms_circuit_key
    )


def _gates(settings: Settings, client, sleep) -> Gates | OpenGates:
    """The email provider's rate limit and circuit breaker, shared through Redis; without it
    (development, one process) nothing to share and nothing held back. Fast-lane messages
    waiting on the broker have the limit's next slots (issue #19)."""
    urgent = waiting_list_key(settings.redis_namespace, Queue.URGENT)
    return _lane_gates(
        settings,
        client,
        sleep,
        "email",
        settings.email_rate_limit_per_second,
        email_circuit_key,
        fast_lane_queue=urgent,
    )


def _lane_gates(
    settings: Settings, client, sleep, lane: str, rate: float, circuit_key, **limiter_options
) -> Gates | OpenGates:
    if client is None:
        return OpenGates(settings.circuit_reset_seconds)
    namespace = settings.redis_namespace
    key = f"{namespace}:ratelimit:{lane}"
    limiter = RateLimiter(client, key=key, rate_per_second=rate, sleep=sleep, **limiter_options)
    circuit = CircuitBreaker(
        client,
        key=circuit_key(namespace),
        failure_threshold=settings.circuit_failure_threshold,
        reset_seconds=settings.circuit_reset_seconds,
        on_transition=count_transition,
    )
    return Gates(client, limiter, circuit)
