"""The broker both services talk to, and the one place jobs are handed to it.

A job row is committed first; :func:`hand_over` then sends its message and marks it ``queued``.
If the broker cannot be reached the job simply stays ``pending`` and the scheduler's outbox relay
hands it over later, so accepting work never depends on Redis being up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import dramatiq
import redis
from dramatiq.brokers.redis import DEFAULT_HEARTBEAT_TIMEOUT, RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name, q_name, xq_name

from tribe_shared.contract import (
    MAX_PERSONALIZATIONS,
    NOTIFICATIONS_PER_MESSAGE,
    JobKind,
    JobStatus,
    route,
)
from tribe_shared.models import NotificationJob, utcnow
from tribe_shared.queues import QUEUES
from tribe_shared.settings import Settings

log = logging.getLogger(__name__)

#: Jobs due within this window are handed over at once with a broker delay; later ones wait
#: in the database for the relay.
HAND_OVER_HORIZON = timedelta(minutes=5)

#: Errors that mean "the broker is unreachable right now", never "the job is bad".
BROKER_DOWN_ERRORS = (redis.exceptions.RedisError, ConnectionError, TimeoutError, OSError)


def broker_heartbeat_timeout(settings: Settings) -> timedelta:
    """How long a worker may stay silent before the broker gives its messages to others:
    the Redis broker's default, but never longer than ``QUEUED_STALE_SECONDS`` (a message held
    by a worker silent for longer than a lost message may take to be noticed counts as lost).
    """
    default = timedelta(milliseconds=DEFAULT_HEARTBEAT_TIMEOUT)
    return min(default, timedelta(seconds=settings.queued_stale_seconds))


def build_broker(settings: Settings) -> dramatiq.Broker:
    """The Redis broker of ``REDIS_URL``, or an in-memory broker when Redis is not configured."""
    if settings.redis_url is None:
        return StubBroker()
    return RedisBroker(
        url=settings.redis_url,
        namespace=settings.redis_namespace,
        heartbeat_timeout=int(broker_heartbeat_timeout(settings).total_seconds() * 1000),
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


def envelopes_for(jobs: Iterable[NotificationJob | JobRef], now: datetime) -> list[Envelope]:
    """Group jobs into broker messages: batchable emails together (up to 1000), notifications
    of one update and digests made together by :data:`NOTIFICATIONS_PER_MESSAGE`, others alone.

    Messages keep the order of ``jobs``: a batch goes where its first job stood.
    """
    groups: dict[object, list[NotificationJob]] = {}
    for job in jobs:
        if job.kind == JobKind.EMAIL and job.batch_key:
            key = (job.batch_key, job.scheduled_for, job.urgency)
        elif job.kind == JobKind.NOTIFICATION and job.update_id is not None:
            key = (job.update_id, job.scheduled_for, job.urgency)
        elif job.kind == JobKind.DIGEST:
            key = (JobKind.DIGEST, job.scheduled_for, job.urgency)
        else:
            key = job.id
        groups.setdefault(key, []).append(job)
    envelopes = []
    for group in groups.values():
        size = MAX_PERSONALIZATIONS if group[0].kind == JobKind.EMAIL else NOTIFICATIONS_PER_MESSAGE
        for start in range(0, len(group), size):
            envelopes.append(_envelope(group[start : start + size], now))
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


@dataclass(slots=True)
class JobRef:
    """What handing a new job over reads of it, for callers that write rows without models.

    Quacks like the :class:`NotificationJob` fields :func:`stage_jobs` and :func:`send_staged`
    read and set.
    """

    id: UUID
    kind: str
    urgency: str
    scheduled_for: datetime
    update_id: UUID | None = None
    batch_key: str | None = None
    status: str = JobStatus.PENDING
    queued_at: datetime | None = None


@dataclass
class Staged:
    """Jobs written in a transaction whose messages are to be sent once it has committed."""

    broker: dramatiq.Broker | None
    due: list[NotificationJob]
    at: datetime


def stage_jobs(
    broker: dramatiq.Broker | None,
    jobs: Sequence[NotificationJob] | Sequence[JobRef],
    *,
    clock: Callable[[], datetime] = utcnow,
    insert: Callable[[Sequence], None] = NotificationJob.insert_new,
) -> Staged:
    """Write new jobs; with a broker, the due ones as ``queued`` (one INSERT, no second write).

    Call inside the caller's transaction, then :func:`send_staged` after the commit. ``insert``
    writes the jobs once their status is set; given :class:`JobRef` s, it writes their rows.
    """
    now = clock()
    due = [job for job in jobs if job.scheduled_for <= now + HAND_OVER_HORIZON] if broker else []
    for job in due:
        job.status, job.queued_at = JobStatus.QUEUED, now
    insert(jobs)
    return Staged(broker, due, now)


def send_staged(staged: Staged) -> None:
    """Send the messages of committed staged jobs; set back to ``pending`` any not sent."""
    handed = send_queued(staged.broker, staged.due, staged.at)
    for job in staged.due:
        if job.id not in handed:
            job.status, job.queued_at = JobStatus.PENDING, None


def send_queued(
    broker: dramatiq.Broker | None, jobs: Sequence[NotificationJob | JobRef], now: datetime
) -> set[UUID]:
    """Send the messages of committed ``queued`` jobs; set back to ``pending`` any not sent.

    Returns the ids sent. The relay hands the others over once the broker is back.
    """
    handed = _send(broker, jobs, now)
    unsent = [job.id for job in jobs if job.id not in handed]
    if unsent:
        (
            NotificationJob.update(status=JobStatus.PENDING, queued_at=None)
            .where(NotificationJob.id.in_(unsent), NotificationJob.status == JobStatus.QUEUED)
            .execute()
        )
    return handed


def accept_jobs(
    broker: dramatiq.Broker | None,
    jobs: Sequence[NotificationJob],
    *,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Store new jobs and hand the due ones to the broker: the path of every accepting request.

    :func:`stage_jobs` then :func:`send_staged`, for a caller with no transaction of its own.
    Any job whose message could not be sent ends ``pending`` for the relay; jobs not due within
    :data:`HAND_OVER_HORIZON` are written ``pending``. (A process killed between the INSERT and
    the send leaves ``queued`` jobs without a message; the reaper hands them over again after
    ``QUEUED_STALE_SECONDS``.) The objects in ``jobs`` end with the status they have in the
    database. Never raises for a broker outage.
    """
    send_staged(stage_jobs(broker, jobs, clock=clock))


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


def _send(
    broker: dramatiq.Broker | None, jobs: Sequence[NotificationJob | JobRef], now
) -> set[UUID]:
    """Enqueue the jobs' messages until the broker fails; return the ids sent."""
    handed: set[UUID] = set()
    if broker is None or not jobs:
        return handed
    try:
        envelopes = envelopes_for(jobs, now)
        if isinstance(broker, RedisBroker) and len(envelopes) > 1:
            _enqueue_pipelined(broker, envelopes)
            handed.update(job_id for envelope in envelopes for job_id in envelope.job_ids)
        else:
            for envelope in envelopes:
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


#: Messages per Redis pipeline when many are enqueued at once.
PIPELINE_SIZE = 1000


def _enqueue_pipelined(broker: RedisBroker, envelopes: list[Envelope]) -> None:
    """What ``RedisBroker.enqueue`` does for each message, in one round trip per 1000.

    It runs the broker's own enqueue script with the broker's own arguments (dramatiq is pinned
    in the lock file; the tests consume such messages with a real worker).
    """
    dispatch = broker.scripts["dispatch"]
    for start in range(0, len(envelopes), PIPELINE_SIZE):
        pipe = broker.client.pipeline(transaction=False)
        sent = []
        for envelope in envelopes[start : start + PIPELINE_SIZE]:
            message = envelope.message.copy(options={"redis_message_id": str(uuid4())})
            if envelope.delay_ms is not None:
                message = message.copy(
                    queue_name=dq_name(message.queue_name),
                    options={"eta": current_millis() + envelope.delay_ms},
                )
            broker.emit_before("enqueue", message, envelope.delay_ms)
            args = _dispatch_args(
                broker,
                "enqueue",
                message.queue_name,
                message.options["redis_message_id"],
                message.encode(),
            )
            dispatch(keys=[broker.namespace], args=args, client=pipe)
            sent.append((message, envelope.delay_ms))
        pipe.execute()
        for message, delay in sent:
            broker.emit_after("enqueue", message, delay)


def _dispatch_args(
    broker: RedisBroker, command: str, queue: str, *args, maintenance: bool = False
) -> list:
    """The arguments of the Redis broker's own ``dispatch`` script, as the broker passes them."""
    return [
        command,
        current_millis(),
        queue,
        broker.broker_id,
        broker.heartbeat_timeout,
        broker.dead_message_ttl,
        int(maintenance),
        broker._max_unpack_size(),
        *args,
    ]


#: Every queue of ours and its delay queue, as the Redis broker names them.
_BROKER_QUEUES = tuple(name for queue in QUEUES for name in (queue, dq_name(queue)))


def recover_dead_workers(broker: RedisBroker) -> None:
    """Run the broker's dead-worker maintenance on every queue, now rather than by chance: the
    messages a worker silent past the heartbeat timeout had fetched go back to their queues."""
    dispatch = broker.scripts["dispatch"]
    pipe = broker.client.pipeline(transaction=False)
    for queue in _BROKER_QUEUES:
        args = _dispatch_args(broker, "qsize", queue, maintenance=True)
        dispatch(keys=[broker.namespace], args=args, client=pipe)
    pipe.execute()


def jobs_on_broker(broker: RedisBroker) -> set[UUID]:
    """The ids of the jobs whose messages the broker still holds, to be consumed.

    One atomic read takes every message stored for a queue or a delay queue, waiting or held by
    a worker; a message is stored from its enqueue until its ack, and a retry or a delay's
    release stores the next one before the ack, so a job with a message to come is never
    missed. (Run :func:`recover_dead_workers` first: a dead worker's messages are stored too.)
    """
    snapshot = broker.client.pipeline(transaction=True)
    for queue in _BROKER_QUEUES:
        snapshot.hvals(f"{broker.namespace}:{queue}.msgs")
    job_ids: set[UUID] = set()
    for bodies in snapshot.execute():
        for body in bodies:
            args = dramatiq.Message.decode(body).args
            if args and isinstance(args[0], str | list):
                job_ids.update(_job_ids(args[0]))
    return job_ids


def _job_ids(arg: str | list) -> list[UUID]:
    """The job ids of an actor's first argument (one id, or a list of them); others ignored."""
    ids = []
    for value in arg if isinstance(arg, list) else [arg]:
        with contextlib.suppress(ValueError):
            ids.append(UUID(str(value)))
    return ids


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
