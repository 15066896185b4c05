"""The state of the system right now, read for ``/metrics`` and the health checks: jobs by
status, the broker's queues, the email circuit, live workers.

Every read is cheap (one grouped query, one Redis pipeline) and bounded (a statement timeout on
PostgreSQL, a socket timeout on Redis). A read that fails raises; the caller reports the service
as down and goes on with what it could read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from peewee import Case, fn
from redis.backoff import NoBackoff
from redis.retry import Retry

from tribe_shared.circuit import CLOSED, CircuitStatus, email_circuit_key, sms_circuit_key
from tribe_shared.contract import (
    PERIODIC_ACTORS,
    JobStatus,
    scheduler_runs_key,
    worker_heartbeats_key,
)
from tribe_shared.db import database, is_postgres
from tribe_shared.models import NotificationJob
from tribe_shared.redis_broker import DEPTH_REPLIES, QueueDepths, read_depths

#: Connects to and reads from Redis give up after this long (seconds).
REDIS_TIMEOUT = 0.5
#: A query of a scrape or a health check is cancelled after this long (PostgreSQL only).
STATEMENT_TIMEOUT_MS = 500
#: A ``pending``/``queued`` job this long past its ``scheduled_for`` is overdue.
OVERDUE_AFTER = timedelta(seconds=60)
#: How far back the failure rate looks.
FAILURE_RATE_WINDOW = timedelta(hours=1)
#: A worker whose last heartbeat is older than this is not alive.
HEARTBEAT_FRESH_SECONDS = 60.0
#: Heartbeats older than this are dropped from the set when it is read.
HEARTBEAT_PRUNE_SECONDS = 3600.0
#: A periodic task (ticked every minute) whose last run is older than this is late: the
#: scheduler, or every worker of the ``maintenance`` queue, has stopped.
SCHEDULER_LATE_SECONDS = 180.0


def probe_client(client: redis.Redis, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A client of ``client``'s Redis that waits at most ``timeout`` for any connect or reply,
    and never retries: a hanging Redis costs one timeout, not several."""
    pool = client.connection_pool
    options = {
        **pool.connection_kwargs,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **options)
    )


# --- the database ---------------------------------------------------------------------------


@dataclass
class JobCounts:
    """One grouped query over the jobs table."""

    #: ``{(status, delivery_method): jobs}``
    by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    #: ``pending``/``queued`` jobs more than :data:`OVERDUE_AFTER` past their time.
    overdue: int = 0
    #: When the oldest due ``pending`` job became due (None when there is none).
    oldest_pending_since: datetime | None = None
    #: ``{status: jobs}`` processed within :data:`FAILURE_RATE_WINDOW`.
    processed_recently: dict[str, int] = field(default_factory=dict)

    def oldest_pending_age(self, now: datetime) -> float:
        """Seconds the oldest due ``pending`` job has waited (0 when none)."""
        if self.oldest_pending_since is None:
            return 0.0
        return max(0.0, (now - self.oldest_pending_since).total_seconds())

    def failure_rate(self) -> float | None:
        """failed / (sent + failed) over the window; None when nothing was processed."""
        failed = self.processed_recently.get(JobStatus.FAILED, 0)
        finished = failed + self.processed_recently.get(JobStatus.SENT, 0)
        return failed / finished if finished else None


@contextmanager
def _bounded() -> Iterator[None]:
    """A connection and transaction whose statements PostgreSQL cancels after the timeout."""
    with database.connection_context(), database.atomic():
        if is_postgres():
            database.execute_sql(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        yield


def read_job_counts(now: datetime) -> JobCounts:
    """Jobs by status and delivery method, overdue jobs, the oldest due pending job and the
    outcomes of the last hour, in one ``GROUP BY`` query."""
    job = NotificationJob
    overdue = job.status.in_([JobStatus.PENDING, JobStatus.QUEUED]) & (
        job.scheduled_for < now - OVERDUE_AFTER
    )
    due_pending = (job.status == JobStatus.PENDING) & (job.scheduled_for <= now)
    recent = job.processed_at >= now - FAILURE_RATE_WINDOW
    query = (
        job.select(
            job.status,
            job.delivery_method,
            fn.COUNT(job.id),
            fn.SUM(Case(None, [(overdue, 1)], 0)),
            fn.MIN(Case(None, [(due_pending, job.scheduled_for)], None)),
            fn.SUM(Case(None, [(recent, 1)], 0)),
        )
        .group_by(job.status, job.delivery_method)
        .tuples()
    )
    counts = JobCounts()
    oldest = []
    with _bounded():
        rows = list(query)
    for status, method, jobs, late, first_due, recent_jobs in rows:
        counts.by_status[(status, method)] = jobs
        counts.overdue += int(late or 0)
        if first_due is not None:
            oldest.append(job.scheduled_for.python_value(first_due))
        if recent_jobs:
            counts.processed_recently[status] = counts.processed_recently.get(status, 0) + int(
                recent_jobs
            )
    counts.oldest_pending_since = min(oldest, default=None)
    return counts


def read_job_health(now: datetime) -> JobCounts:
    """What the health check needs from the jobs table, read through the indexes only.

    The outcomes of the last hour (``processed_at`` index) and the oldest due pending job
    (``status, scheduled_for`` index): cheap enough for a load balancer's frequent checks,
    unlike :func:`read_job_counts`, which counts the whole table.
    """
    job = NotificationJob
    outcomes = (
        job.select(job.status, fn.COUNT(job.id))
        .where(
            (job.processed_at >= now - FAILURE_RATE_WINDOW)
            & job.status.in_([JobStatus.SENT, JobStatus.FAILED])
        )
        .group_by(job.status)
        .tuples()
    )
    oldest = (
        job.select(job.scheduled_for)
        .where((job.status == JobStatus.PENDING) & (job.scheduled_for <= now))
        .order_by(job.scheduled_for)
        .limit(1)
        .tuples()
    )
    with _bounded():
        recent = dict(outcomes)
        first = list(oldest)
    return JobCounts(processed_recently=recent, oldest_pending_since=first[0][0] if first else None)


# --- Redis ----------------------------------------------------------------------------------


@dataclass
class BrokerState:
    """Queue depths, the email and SMS circuits and live workers, from one Redis pipeline."""

    #: ``{queue: {"waiting", "active", "delayed", "failed"}}`` (failed: dead-lettered)
    queues: QueueDepths
    circuit: CircuitStatus
    workers_alive: int
    #: Twilio's breaker (SMS and WhatsApp), apart from the email one.
    sms_circuit: CircuitStatus = CLOSED
    #: ``{periodic task: unix time of its last successful run}``; a task never run is absent.
    last_runs: dict[str, float] = field(default_factory=dict)

    def late_tasks(self, now: float, after: float = SCHEDULER_LATE_SECONDS) -> dict[str, float]:
        """``{task: seconds since its last run}`` of the periodic tasks not run for ``after``
        seconds (``inf``: never run)."""
        late = {}
        for task in PERIODIC_ACTORS:
            age = now - self.last_runs[task] if task in self.last_runs else float("inf")
            if age > after:
                late[task.value] = age
        return late


def read_broker_state(
    client: redis.Redis, namespace: str, *, now: float | None = None
) -> BrokerState:
    """Read the broker's queue keys, the circuit hash and the worker heartbeats at once."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    depths_of = read_depths(pipe, namespace)
    beats = worker_heartbeats_key(namespace)
    pipe.zremrangebyscore(beats, "-inf", now - HEARTBEAT_PRUNE_SECONDS)
    pipe.zcount(beats, now - HEARTBEAT_FRESH_SECONDS, "+inf")
    pipe.hgetall(email_circuit_key(namespace))
    pipe.hgetall(scheduler_runs_key(namespace))
    pipe.hgetall(sms_circuit_key(namespace))
    values = pipe.execute()
    _, alive, circuit_hash, runs, sms_hash = values[DEPTH_REPLIES:]
    return BrokerState(
        queues=depths_of(values),
        circuit=_status(circuit_hash),
        sms_circuit=_status(sms_hash),
        workers_alive=int(alive),
        last_runs={task.decode(): float(at) for task, at in runs.items()},
    )


def _status(circuit_hash: dict[bytes, bytes]) -> CircuitStatus:
    return CircuitStatus.from_hash({k.decode(): v.decode() for k, v in circuit_hash.items()})
