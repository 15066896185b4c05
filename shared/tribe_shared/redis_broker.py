"""Dramatiq's Redis broker: building it, and every place we rely on how it works inside.

Dramatiq documents its actors and its broker's public methods, not the Redis keys behind them nor
the Lua script every broker command runs. We use both, for things its public API cannot do:
enqueue a thousand messages in one round trip, read queue depths for metrics, find the messages a
queue still holds, run the dead-worker maintenance now rather than by chance, and drop a dead
letter. All of it is here, and ``tests/shared/test_redis_broker.py`` checks each against the
Dramatiq version in the lock file: an upgrade that changes any of it fails that test first.

The layout (namespace ``N``, queue ``q``): ``N:q`` the LIST of waiting message ids; ``N:q.msgs``
the HASH id → message, holding each message from its enqueue until its ack; ``N:q.DQ`` and
``N:q.DQ.msgs`` the same for the delay queue; ``N:q.XQ`` the ZSET of dead-lettered ids (scored
by time) and ``N:q.XQ.msgs`` their messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import dramatiq
import redis
from dramatiq.brokers.redis import DEFAULT_HEARTBEAT_TIMEOUT, RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name, q_name, xq_name

from tribe_shared.contract import Queue
from tribe_shared.settings import Settings

#: The Dramatiq release everything below was checked against (``tests/shared/
#: test_redis_broker.py`` fails on any other: check each function again before you upgrade).
CHECKED_DRAMATIQ = "2.2.1"

#: Errors that mean "the broker is unreachable right now", never "the job is bad".
BROKER_DOWN_ERRORS = (redis.exceptions.RedisError, ConnectionError, TimeoutError, OSError)

#: Every queue of ours.
QUEUES = tuple(queue.value for queue in Queue)
#: Every queue of ours and its delay queue, as the Redis broker names them.
_STORED_QUEUES = tuple(name for queue in QUEUES for name in (queue, dq_name(queue)))
#: Messages per Redis pipeline when many are enqueued at once.
PIPELINE_SIZE = 1000


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


# --- writing: many messages at once, a dead letter dropped ----------------------------------


def enqueue_many(broker: RedisBroker, messages: Iterable[tuple[dramatiq.Message, int | None]]):
    """What ``RedisBroker.enqueue`` does for each (message, delay in ms), in one round trip
    per :data:`PIPELINE_SIZE`: the broker's own ``dispatch`` script with its own arguments,
    and the middleware told before and after each, as ``enqueue`` tells it."""
    dispatch = broker.scripts["dispatch"]
    batch = list(messages)
    for start in range(0, len(batch), PIPELINE_SIZE):
        pipe = broker.client.pipeline(transaction=False)
        sent = []
        for message, delay in batch[start : start + PIPELINE_SIZE]:
            message = message.copy(options={"redis_message_id": str(uuid4())})
            if delay is not None:
                message = message.copy(
                    queue_name=dq_name(message.queue_name),
                    options={"eta": current_millis() + delay},
                )
            broker.emit_before("enqueue", message, delay)
            redis_id = message.options["redis_message_id"]
            args = _dispatch_args(broker, "enqueue", message.queue_name, redis_id, message.encode())
            dispatch(keys=[broker.namespace], args=args, client=pipe)
            sent.append((message, delay))
        pipe.execute()
        for message, delay in sent:
            broker.emit_after("enqueue", message, delay)


def dead_letter_of(message: dict) -> str | None:
    """Where the Redis broker keeps a failed message (given as ``Message.asdict()``):
    ``<queue>:<redis message id>``."""
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


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message, as :func:`read_dead_letters` finds it."""

    #: ``<queue>:<redis message id>``, as a failed job's ``dead_letter`` names it.
    location: str
    queue: str
    #: Unix time it was dead-lettered.
    failed_at: float
    actor_name: str
    job_ids: tuple[UUID, ...]
    retries: int


def read_dead_letters(client: redis.Redis, namespace: str, limit: int = 50) -> list[DeadLetter]:
    """The newest ``limit`` dead letters of each queue (``N:q.XQ`` scored by the time each
    failed, ``N:q.XQ.msgs`` their messages), newest first; one pipeline per read."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.zrevrange(f"{namespace}:{xq_name(queue)}", 0, limit - 1, withscores=True)
    ranked = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for queue, entries in zip(QUEUES, ranked, strict=True):
        if entries:
            pipe.hmget(f"{namespace}:{xq_name(queue)}.msgs", [redis_id for redis_id, _ in entries])
    bodies = iter(pipe.execute())
    letters = []
    for queue, entries in zip(QUEUES, ranked, strict=True):
        if not entries:
            continue
        for (redis_id, score), body in zip(entries, next(bodies), strict=True):
            if body is None:
                continue
            message = dramatiq.Message.decode(body)
            arg = message.args[0] if message.args else []
            letters.append(
                DeadLetter(
                    location=f"{queue}:{redis_id.decode()}",
                    queue=queue,
                    failed_at=score / 1000,  # the broker scores them in milliseconds
                    actor_name=message.actor_name,
                    job_ids=tuple(_job_ids(arg) if isinstance(arg, str | list) else ()),
                    retries=message.options.get("retries", 0),
                )
            )
    return sorted(letters, key=lambda letter: letter.failed_at, reverse=True)[:limit]


# --- recovering: the dead workers' messages, the messages still to come ---------------------


def recover_dead_workers(broker: RedisBroker) -> None:
    """Run the broker's dead-worker maintenance on every queue, now rather than by chance: the
    messages a worker silent past the heartbeat timeout had fetched go back to their queues."""
    dispatch = broker.scripts["dispatch"]
    pipe = broker.client.pipeline(transaction=False)
    for queue in _STORED_QUEUES:
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
    for queue in _STORED_QUEUES:
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


# --- reading: queue depths ------------------------------------------------------------------

#: What a depth counts: waiting = ``LLEN q``; active (fetched, not yet acked) ≈
#: ``HLEN q.msgs - LLEN q``; delayed = ``HLEN q.DQ.msgs``; failed (dead letters) = ``ZCARD q.XQ``.
DEPTHS = ("waiting", "active", "delayed", "failed")
#: How many replies :func:`read_depths` adds to a pipeline.
DEPTH_REPLIES = 4 * len(QUEUES)

QueueDepths = dict[str, dict[str, int]]


def waiting_list_key(namespace: str, queue: str) -> str:
    """The Redis list of ``queue``'s messages waiting to be fetched by a worker."""
    return f"{namespace}:{queue}"


def read_depths(pipe: redis.client.Pipeline, namespace: str) -> Callable[[list], QueueDepths]:
    """Add the depth reads to ``pipe`` (before any other command); returns the function that
    turns the pipeline's replies into ``{queue: {"waiting", "active", "delayed", "failed"}}``."""
    for queue in QUEUES:
        key = waiting_list_key(namespace, queue)
        pipe.llen(key)
        pipe.hlen(f"{key}.msgs")
        pipe.hlen(f"{key}.DQ.msgs")
        pipe.zcard(f"{key}.XQ")

    def depths_of(values: list) -> QueueDepths:
        depths = {}
        for i, queue in enumerate(QUEUES):
            waiting, stored, delayed, failed = values[4 * i : 4 * i + 4]
            depths[queue] = {
                "waiting": waiting,
                "active": max(0, stored - waiting),
                "delayed": delayed,
                "failed": failed,
            }
        return depths

    return depths_of


def total(depths: QueueDepths) -> dict[str, int]:
    """The depths summed over every queue."""
    return {k: sum(d[k] for d in depths.values()) for k in DEPTHS}


# --- the worker's own queue of fetched messages ------------------------------------------------


def work_queue_of(worker: dramatiq.Worker):
    """The queue of messages ``worker`` fetched that wait for one of its threads (Dramatiq 2.x:
    ``Worker.work_queue``, a ``PriorityQueue`` of items with a ``message``), or None."""
    return getattr(worker, "work_queue", None)


def waits_for_a_thread(work_queue, queue_name: str) -> bool:
    """A message of ``queue_name`` waits in ``work_queue`` for a thread (read under the queue's
    own lock, changing nothing)."""
    with work_queue.mutex:
        return any(item.message.queue_name == queue_name for item in work_queue.queue)
