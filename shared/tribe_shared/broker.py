"""The broker both services talk to, and the one place jobs are handed to it.

A job row is committed first; :func:`hand_over` then sends its message and marks it ``queued``.
If the broker cannot be reached the job simply stays ``pending`` and the scheduler's outbox relay
hands it over later, so accepting work never depends on Redis being up.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import q_name, xq_name

from tribe_shared.contract import MAX_PERSONALIZATIONS, JobKind, JobStatus, route
from tribe_shared.models import NotificationJob, utcnow
from tribe_shared.settings import Settings

log = logging.getLogger(__name__)

#: Jobs due within this window are handed over at once with a broker delay; later ones wait
#: in the database for the relay.
HAND_OVER_HORIZON = timedelta(minutes=5)

#: Errors that mean "the broker is unreachable right now", never "the job is bad".
BROKER_DOWN_ERRORS = (redis.exceptions.RedisError, ConnectionError, TimeoutError, OSError)


def build_broker(settings: Settings) -> dramatiq.Broker:
    """The Redis broker of ``REDIS_URL``, or an in-memory broker when Redis is not configured."""
    if settings.redis_url is None:
        return StubBroker()
    return RedisBroker(
        url=settings.redis_url,
        namespace=settings.redis_namespace,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


@dataclass(frozen=True)
class Envelope:
    """One broker message and the jobs it carries."""

    message: dramatiq.Message
    job_ids: tuple[UUID, ...]
    delay_ms: int | None


def batch_key(*parts: object) -> str:
    """A stable key for jobs whose content is identical, so they can travel as one batch."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def envelopes_for(jobs: Iterable[NotificationJob], now: datetime) -> list[Envelope]:
    """Group jobs into broker messages: batchable emails together (up to 1000), others alone.

    Messages keep the order of ``jobs``: a batch goes where its first job stood.
    """
    groups: dict[object, list[NotificationJob]] = {}
    for job in jobs:
        batchable = job.kind == JobKind.EMAIL and job.batch_key
        key = (job.batch_key, job.scheduled_for, job.urgency) if batchable else job.id
        groups.setdefault(key, []).append(job)
    envelopes = []
    for group in groups.values():
        for start in range(0, len(group), MAX_PERSONALIZATIONS):
            envelopes.append(_envelope(group[start : start + MAX_PERSONALIZATIONS], now))
    return envelopes


def _envelope(jobs: Sequence[NotificationJob], now: datetime) -> Envelope:
    first = jobs[0]
    batch = len(jobs) > 1
    actor, queue = route(first.kind, first.urgency, batch=batch)
    ids = tuple(job.id for job in jobs)
    arg = [str(i) for i in ids] if batch else str(ids[0])
    message = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(arg,), kwargs={}, options={}
    )
    wait_ms = int((first.scheduled_for - now).total_seconds() * 1000)
    return Envelope(message, ids, wait_ms if wait_ms > 0 else None)


def accept_jobs(
    broker: dramatiq.Broker | None,
    jobs: Sequence[NotificationJob],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Store new jobs and hand the due ones to the broker: the path of every accepting request.

    With a broker, due jobs are written ``queued`` (one INSERT, no second write) and their
    messages sent once the INSERT has committed; any whose message could not be sent is set back
    to ``pending`` for the relay. Jobs not due within :data:`HAND_OVER_HORIZON` are written
    ``pending``. (A process killed between the INSERT and the send leaves ``queued`` jobs without
    a message; the reaper hands them over again after ``QUEUED_STALE_SECONDS``.) The objects in
    ``jobs`` end with the status they have in the database. Never raises for a broker outage.
    """
    now = clock()
    due = [job for job in jobs if job.scheduled_for <= now + HAND_OVER_HORIZON] if broker else []
    for job in due:
        job.status, job.queued_at = JobStatus.QUEUED, now
    NotificationJob.insert_new(jobs)
    handed = _send(broker, due, now)
    unsent = [job for job in due if job.id not in handed]
    if unsent:
        (
            NotificationJob.update(status=JobStatus.PENDING, queued_at=None)
            .where(
                NotificationJob.id.in_([job.id for job in unsent]),
                NotificationJob.status == JobStatus.QUEUED,
            )
            .execute()
        )
        for job in unsent:
            job.status, job.queued_at = JobStatus.PENDING, None


def hand_over(
    broker: dramatiq.Broker | None,
    jobs: Sequence[NotificationJob],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> set[UUID]:
    """Send the messages of stored ``pending`` jobs and mark the sent ones ``queued``.

    Returns the ids handed over (their objects in ``jobs`` are updated too). Jobs not due
    within :data:`HAND_OVER_HORIZON`, and every job once the broker fails, stay ``pending`` for
    the relay. Never raises for a broker outage.
    """
    now = clock()
    due = [job for job in jobs if job.scheduled_for <= now + HAND_OVER_HORIZON]
    if broker is None or not due:
        return set()
    handed = _send(broker, due, now)
    if handed:
        for job in due:
            if job.id in handed:
                job.status, job.queued_at = JobStatus.QUEUED, now
        (
            NotificationJob.update(status=JobStatus.QUEUED, queued_at=now)
            .where(
                NotificationJob.id.in_(list(handed)),
                NotificationJob.status == JobStatus.PENDING,
            )
            .execute()
        )
    return handed


def _send(broker: dramatiq.Broker | None, jobs: Sequence[NotificationJob], now) -> set[UUID]:
    """Enqueue the jobs' messages until the broker fails; return the ids sent."""
    handed: set[UUID] = set()
    if broker is None or not jobs:
        return handed
    try:
        for envelope in envelopes_for(jobs, now):
            broker.enqueue(envelope.message, delay=envelope.delay_ms)
            handed.update(envelope.job_ids)
    except BROKER_DOWN_ERRORS as exc:
        log.warning(
            "broker unreachable, %d job(s) wait for the relay: %s", len(jobs) - len(handed), exc
        )
    except Exception:
        # The rows are stored: whatever went wrong, the relay hands the rest over later.
        log.exception("hand-over failed, %d job(s) wait for the relay", len(jobs) - len(handed))
    return handed


def dead_letter_of(message: dict) -> str | None:
    """Where the Redis broker keeps a failed message: ``<queue>:<redis message id>``."""
    redis_id = message.get("options", {}).get("redis_message_id")
    if redis_id is None:
        return None
    return f"{q_name(message['queue_name'])}:{redis_id}"


def forget_dead_letter(broker: dramatiq.Broker | None, dead_letter: str | None) -> None:
    """Remove a dead-lettered message (a failed job is being retried by hand)."""
    if dead_letter is None or not isinstance(broker, RedisBroker):
        return
    queue, redis_id = dead_letter.rsplit(":", 1)
    xq = f"{broker.namespace}:{xq_name(queue)}"
    pipe = broker.client.pipeline()
    pipe.zrem(xq, redis_id)
    pipe.hdel(f"{xq}.msgs", redis_id)
    pipe.execute()
