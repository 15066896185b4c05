"""The stuck-job reaper: takes back work whose worker died or whose message was lost.

Dramatiq's Redis broker requeues a dead worker's messages only during its randomly scheduled
maintenance, which can take many minutes; the job rows tell us for certain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from tribe_shared.contract import JobStatus
from tribe_shared.models import NotificationJob

log = logging.getLogger(__name__)


#: A job whose worker died during this many deliveries is failed: it is what kills them.
MAX_LEASE_LOSSES = 3


def reap_stuck_jobs(
    *,
    clock: Callable[[], datetime],
    lease: timedelta,
    stale: timedelta,
) -> dict[str, int]:
    """Put jobs back in the outbox; return how many were taken back, poisoned and requeued.

    - ``processing`` past the lease: its worker died mid-job. Back to ``pending`` (the attempt
      stays counted), or ``failed`` at the :data:`MAX_LEASE_LOSSES`-th death (a poison job:
      Dramatiq does not count a killed worker as a retry, so we count in the row).
    - ``queued`` and due for longer than ``stale``: its message was lost (Redis flushed, a
      message dropped). Back to ``pending`` for the relay; a duplicate message is harmless.
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
    requeued = (
        NotificationJob.update(status=JobStatus.PENDING)
        .where(
            NotificationJob.status == JobStatus.QUEUED,
            NotificationJob.queued_at < now - stale,
            NotificationJob.scheduled_for < now - stale,
        )
        .execute()
    )
    counts = {"taken_back": taken_back, "poisoned": poisoned, "requeued": requeued}
    if any(counts.values()):
        log.warning("reaper: %s", counts)
    return counts
