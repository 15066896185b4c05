"""The outbox: the one way jobs reach the broker.

A job row is the truth; its broker message only says "look at this job". Every accepting request
writes its jobs and hands them over in two steps:

1. :meth:`Outbox.stage`, in the transaction that writes the jobs, just before writing them: the
   jobs due soon (within :data:`HAND_OVER_HORIZON`) are marked ``queued``, so one INSERT writes
   them as they will be once their messages are out — no second write on the happy path;
2. :meth:`Outbox.send`, after the commit: their messages go to the broker, and any job whose
   message could not be sent (the broker is down) is set back to ``pending``.

A ``pending`` job is the scheduler's to hand over: :meth:`Outbox.relay` sends the messages of
stored ``pending`` jobs, then marks the sent ones ``queued``. Accepting work therefore never
depends on Redis being up, and a process killed between the commit and the send leaves ``queued``
jobs without a message, which the reaper hands over again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tribe_shared import tracing
from tribe_shared.contract import (
    MAX_PERSONALIZATIONS,
    NOTIFICATIONS_PER_MESSAGE,
    JobKind,
    JobStatus,
    route,
)
from tribe_shared.db import database
from tribe_shared.models import NotificationJob
from tribe_shared.redis_broker import BROKER_DOWN_ERRORS, enqueue_many

log = logging.getLogger(__name__)

#: Jobs due within this window are handed over at once with a broker delay; later ones wait
#: in the database for the relay.
HAND_OVER_HORIZON = timedelta(minutes=5)


@dataclass(slots=True)
class JobRef:
    """What handing a job over reads of it (and sets: its ``status`` and ``queued_at``)."""

    id: UUID
    kind: str
    urgency: str
    scheduled_for: datetime
    update_id: UUID | None = None
    batch_key: str | None = None
    status: str = JobStatus.PENDING
    queued_at: datetime | None = None

    @classmethod
    def of(cls, job: NotificationJob) -> JobRef:
        return cls(
            id=job.id,
            kind=job.kind,
            urgency=job.urgency,
            scheduled_for=job.scheduled_for,
            update_id=job.update_id,
            batch_key=job.batch_key,
            status=job.status,
            queued_at=job.queued_at,
        )


@dataclass(frozen=True)
class Staged:
    """The jobs a transaction writes ``queued``, whose messages go out once it has committed."""

    jobs: list[JobRef]
    at: datetime

    def only(self, job_ids: set[UUID]) -> Staged:
        """These staged jobs, except any the transaction did not write after all."""
        return replace(self, jobs=[job for job in self.jobs if job.id in job_ids])


@dataclass(frozen=True)
class Envelope:
    """One broker message and the jobs it carries."""

    message: dramatiq.Message
    job_ids: tuple[UUID, ...]
    delay_ms: int | None


class Outbox:
    """Hands jobs to ``broker``; with none (an API without Redis) every job stays ``pending``."""

    def __init__(self, broker: dramatiq.Broker | None) -> None:
        self.broker = broker

    def stage(self, jobs: Sequence[JobRef], now: datetime) -> Staged:
        """Mark the jobs due within :data:`HAND_OVER_HORIZON` of ``now`` ``queued``, before the
        caller writes them (each ref's ``status`` and ``queued_at`` are what to write)."""
        if self.broker is None:
            return Staged([], now)
        due = [job for job in jobs if job.scheduled_for <= now + HAND_OVER_HORIZON]
        for job in due:
            job.status, job.queued_at = JobStatus.QUEUED, now
        return Staged(due, now)

    def send(self, staged: Staged) -> None:
        """After the commit: send the staged jobs' messages; any not sent goes back to
        ``pending``, in the database and in its ref. Never raises for a broker outage.

        Called outside a transaction (the usual case: the caller's own transaction has
        committed) it sends at once. Called inside one (a request with an ``Idempotency-Key``,
        whose whole work is one transaction: :mod:`tribe_api.idempotency`), it sends once that
        transaction commits, and never if it rolls back: no message names a row that is not
        there yet, or never will be.
        """
        if not staged.jobs:
            return
        if database.transaction_depth():
            database.after_commit(lambda: self._send_after_commit(staged))
            return
        self._send_now(staged)

    def _send_after_commit(self, staged: Staged) -> None:
        # Run by the commit itself: the rows are stored, so nothing here may fail the request.
        # A job whose message did not go stays queued; the reaper hands it over again.
        try:
            self._send_now(staged)
        except Exception:
            log.exception("hand-over after commit failed, %d job(s) wait", len(staged.jobs))

    def _send_now(self, staged: Staged) -> None:
        handed = self._send(staged.jobs, staged.at)
        unsent = [job for job in staged.jobs if job.id not in handed]
        if not unsent:
            return
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

    def relay(self, jobs: Sequence[JobRef], now: datetime) -> set[UUID]:
        """Send the messages of stored ``pending`` jobs and mark the sent ones ``queued``.

        Returns the ids handed over. Jobs not due within :data:`HAND_OVER_HORIZON` of ``now``,
        and every job once the broker fails, stay ``pending``. Never raises for a broker outage.
        """
        due = [job for job in jobs if job.scheduled_for <= now + HAND_OVER_HORIZON]
        if self.broker is None or not due:
            return set()
        handed = self._send(due, now)
        if handed:
            (
                NotificationJob.update(status=JobStatus.QUEUED, queued_at=now)
                .where(
                    NotificationJob.id.in_(list(handed)),
                    NotificationJob.status == JobStatus.PENDING,
                )
                .execute()
            )
        return handed

    def _send(self, jobs: Sequence[JobRef], now: datetime) -> set[UUID]:
        """Enqueue the jobs' messages until the broker fails; return the ids sent."""
        handed: set[UUID] = set()
        if self.broker is None or not jobs:
            return handed
        with tracing.span("send jobs", kind="producer", **{"tribe.jobs": len(jobs)}):
            return self._enqueue(jobs, now, handed)

    def _enqueue(self, jobs: Sequence[JobRef], now: datetime, handed: set[UUID]) -> set[UUID]:
        try:
            envelopes = envelopes_for(jobs, now)
            if isinstance(self.broker, RedisBroker) and len(envelopes) > 1:
                enqueue_many(self.broker, ((e.message, e.delay_ms) for e in envelopes))
                handed.update(job_id for envelope in envelopes for job_id in envelope.job_ids)
            else:
                for envelope in envelopes:
                    self.broker.enqueue(envelope.message, delay=envelope.delay_ms)
                    handed.update(envelope.job_ids)
        except BROKER_DOWN_ERRORS as exc:
            log.warning(
                "broker unreachable, %d job(s) wait for the relay: %s", len(jobs) - len(handed), exc
            )
        except Exception:
            # The rows are stored: whatever went wrong, the relay hands the rest over later.
            log.exception("hand-over failed, %d job(s) wait for the relay", len(jobs) - len(handed))
        return handed


def batch_key(*parts: object) -> str:
    """A stable key for jobs whose content is identical, so they can travel as one batch."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def envelopes_for(jobs: Iterable[JobRef], now: datetime) -> list[Envelope]:
    """Group jobs into broker messages: batchable emails together (up to 1000), notifications
    of one update and digests made together by :data:`NOTIFICATIONS_PER_MESSAGE`, others alone.

    Messages keep the order of ``jobs``: a batch goes where its first job stood.
    """
    groups: dict[object, list[JobRef]] = {}
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


def _envelope(jobs: Sequence[JobRef], now: datetime) -> Envelope:
    first = jobs[0]
    batch = len(jobs) > 1
    actor, queue = route(first.kind, first.urgency, batch=batch)
    ids = tuple(job.id for job in jobs)
    arg = [str(i) for i in ids] if batch else str(ids[0])
    # The trace of the request (when tracing is on) goes on with the worker's processing.
    context = tracing.current_context()
    options = {tracing.MESSAGE_OPTION: context} if context else {}
    message = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(arg,), kwargs={}, options=options
    )
    wait_ms = int((first.scheduled_for - now).total_seconds() * 1000)
    return Envelope(message, ids, wait_ms if wait_ms > 0 else None)
