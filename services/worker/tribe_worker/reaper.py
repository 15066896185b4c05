"""The stuck-job reaper: takes back work whose worker died or whose message was lost.

Dramatiq's Redis broker requeues a dead worker's messages only during its randomly scheduled
maintenance, which can take many minutes; the job rows tell us for certain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tribe_shared.contract import JobStatus
from tribe_shared.models import NotificationJob
from tribe_shared.redis_broker import jobs_on_broker, recover_dead_workers

log = logging.getLogger(__name__)


#: A job whose worker died during this many deliveries is failed: it is what kills them.
MAX_LEASE_LOSSES = 3


def reap_stuck_jobs(
    broker: dramatiq.Broker | None,
    *,
    clock: Callable[[], datetime],
    lease: timedelta,
    stale: timedelta,
) -> dict[str, int]:
    """Put jobs back in the outbox; return how many were taken back, poisoned and requeued.

    - ``processing`` past the lease: its worker died mid-job. Back to ``pending`` (the attempt
      stays counted), or ``failed`` at the :data:`MAX_LEASE_LOSSES`-th death (a poison job:
      Dramatiq does not count a killed worker as a retry, so we count in the row).
    - ``queued`` and due for longer than ``stale`` with no message left on the broker: it was
      lost (Redis flushed, a process killed between its commit and its send). Back to
      ``pending`` for the relay. A job still waiting behind a long backlog keeps its place. (An
      in-memory broker cannot be read: there every stale job is handed over again, and the
      claim makes the second message harmless.)
    """
    now = clock()
    lease_expired = (NotificationJob.status == JobStatus.PROCESSING) & (
        NotificationJob.claimed_at < now - lease
    )
    last_life = NotificationJob.lease_losses >= MAX_LEASE_LOSSES - 1
    poisoned = (
        NotificationJob.update(
            status=JobStatus.FAILED,
            processed_at=now,
            lease_losses=NotificationJob.lease_losses + 1,
            failure_reason=f"The worker died during {MAX_LEASE_LOSSES} deliveries of this job",
        )
        .where(lease_expired, last_life)
        .execute()
    )
    taken_back = (
        NotificationJob.update(
            status=JobStatus.PENDING,
            claimed_at=None,
            lease_losses=NotificationJob.lease_losses + 1,
        )
        .where(lease_expired, ~last_life)
        .execute()
    )
    requeued = _requeue_lost_messages(broker, now - stale)
    counts = {"taken_back": taken_back, "poisoned": poisoned, "requeued": requeued}
    if any(counts.values()):
        log.warning("reaper: %s", counts)
    return counts


def _requeue_lost_messages(broker: dramatiq.Broker | None, before: datetime) -> int:
    """Put ``queued`` jobs due and handed over ``before`` whose message is gone back to pending."""
    stale = (
        (NotificationJob.status == JobStatus.QUEUED)
        & (NotificationJob.queued_at < before)
        & (NotificationJob.scheduled_for < before)
    )
    if not isinstance(broker, RedisBroker):
        return NotificationJob.update(status=JobStatus.PENDING).where(stale).execute()
    recover_dead_workers(broker)
    # Candidates first, the broker second: a message can only leave the broker after its
    # job has moved on from this state, which the UPDATE checks again.
    candidates = {job.id for job in NotificationJob.select(NotificationJob.id).where(stale)}
    if not candidates:
        return 0
    lost = candidates - jobs_on_broker(broker)
    if not lost:
        return 0
    return (
        NotificationJob.update(status=JobStatus.PENDING)
        .where(stale, NotificationJob.id.in_(list(lost)))
        .execute()
    )
