"""What the worker tells the world about each job it touches: one log line per state change
(JSON in production, see :mod:`tribe_shared.logs`) and the matching metrics.

Delivery calls a :class:`JobEvents` at the one place each change happens, so the logs and the
metrics cannot disagree. A line carries the job's id, kind, the actor, the attempt and the
milliseconds since the attempt began (``duration_ms``), never an address, a body or a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tribe_shared.contract import URGENT_SUFFIX, JobKind, JobStatus
from tribe_shared.models import NotificationJob
from tribe_shared.sql.delivery import ClaimedJob
from tribe_worker import metrics

log = logging.getLogger("tribe_worker.jobs")

#: How the skip reason of a job to a suppressed address begins (``suppressed: <why>``).
SUPPRESSED = "suppressed:"

#: A job as delivery holds it (claimed), or as the exhausted-retries callback reads it.
Job = ClaimedJob | NotificationJob


@dataclass(frozen=True)
class Attempt:
    """The run of a delivery actor: its name, for the logs, and whether the Retries middleware
    will retry the message after a transient failure (else its jobs are failed as exhausted)."""

    actor: str = ""
    will_retry: bool = True

    @property
    def fast_lane(self) -> bool:
        """An actor of the fast lane (urgent and high jobs), which passes the gates first."""
        return self.actor.endswith(URGENT_SUFFIX)


@dataclass
class JobEvents:
    """The state changes of one attempt's jobs. ``started`` is when the attempt began."""

    attempt: Attempt = field(default_factory=Attempt)
    started: float = field(default_factory=time.perf_counter)

    def claimed(self, jobs: Sequence[Job]) -> None:
        """At DEBUG: the outcome's line carries the attempt and its duration, and at hundreds
        of emails a second a second line per email is a measurable share of a worker's CPU."""
        self._log(jobs, "claimed", level=logging.DEBUG)

    def skipped(self, jobs: Sequence[Job], reason: str) -> None:
        self._log(jobs, JobStatus.SKIPPED, reason=reason)
        metrics.count_finished((job.kind for job in jobs), JobStatus.SKIPPED)
        if reason.startswith(SUPPRESSED):
            for job in jobs:
                metrics.suppressed_skips.labels(kind=str(job.kind)).inc()
        for job in jobs:
            if job.kind == JobKind.DIGEST:
                metrics.digests.labels(outcome="skipped").inc()

    def deferred(self, jobs: Sequence[Job], gate: str, delay_ms: int) -> None:
        """Held at ``gate`` (``rate_limit`` or ``circuit``) and put back for ``delay_ms``."""
        self._log(jobs, "deferred", gate=gate, delay_ms=delay_ms)
        metrics.gate_deferrals.labels(gate=gate).inc()

    def called(self, provider: str, outcome: str, seconds: float) -> None:
        """A provider call returned ``outcome`` (``sent``, ``transient``, ``permanent``, or
        ``refused``: the provider refused our credentials)."""
        metrics.provider_calls.labels(provider=provider, outcome=outcome).inc()
        metrics.provider_call_duration.labels(provider=provider).observe(seconds)

    def sent(self, jobs: Sequence[Job], provider: str, message_id: str, now: datetime) -> None:
        self._log(jobs, JobStatus.SENT, provider=provider, provider_message_id=message_id)
        metrics.count_finished((job.kind for job in jobs), JobStatus.SENT)
        for job in jobs:
            if job.kind == JobKind.DIGEST:
                metrics.digests.labels(outcome="sent").inc()
                if job.digest_period is not None:
                    lag = (now - job.digest_period).total_seconds()
                    metrics.digest_delivery_lag.observe(max(lag, 0.0))

    def failed(self, jobs: Sequence[Job], reason: str, provider: str | None) -> None:
        """Failed at once (a permanent failure, or nothing could be sent)."""
        self._log(jobs, JobStatus.FAILED, provider=provider, reason=reason, level=logging.WARNING)
        metrics.count_finished((job.kind for job in jobs), JobStatus.FAILED)

    def failed_transiently(
        self, jobs: Sequence[Job], reason: str, provider: str, delay_ms: int
    ) -> None:
        """Back to ``queued``: retried after ``delay_ms``, or failed once retries are exhausted."""
        if self.attempt.will_retry:
            self._log(jobs, "retrying", provider=provider, reason=reason, delay_ms=delay_ms)
            for job in jobs:
                metrics.job_retries.labels(kind=str(job.kind)).inc()
        else:
            self._log(jobs, "retries_exhausted", provider=provider, reason=reason)

    def exhausted(self, jobs: Sequence[Job], retries: int) -> None:
        """Failed because their message's retries ran out (``mark_job_failed``)."""
        reason = f"retries exhausted after {retries + 1} attempts"
        self._log(jobs, JobStatus.FAILED, reason=reason, level=logging.WARNING)
        metrics.count_finished((job.kind for job in jobs), JobStatus.FAILED)

    def _log(self, jobs: Sequence[Job], state: str, level: int = logging.INFO, **fields) -> None:
        if not log.isEnabledFor(level):
            return
        duration_ms = int((time.perf_counter() - self.started) * 1000)
        for job in jobs:
            log.log(
                level,
                "job %s %s%s",
                job.id,
                state,
                f": {fields['reason']}" if fields.get("reason") else "",
                extra={
                    "event": "job_state",
                    "state": str(state),
                    "job_id": str(job.id),
                    "kind": str(job.kind),
                    "actor": self.attempt.actor,
                    "attempt": job.attempts,
                    "duration_ms": duration_ms,
                    "request_id": getattr(job, "request_id", None),
                    **fields,
                },
            )
