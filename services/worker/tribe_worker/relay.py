"""The outbox relay: hand every due ``pending`` job to the broker, most urgent and oldest first.

Jobs stay ``pending`` when the broker was down as they were accepted, or when they were
scheduled for later. The scheduler runs the relay every minute; it is safe to run twice at once
(rows are locked while handed over) and catches up on its own from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from peewee import Case

from tribe_shared.contract import URGENCY_RANK, JobStatus
from tribe_shared.db import is_postgres, locking_transaction
from tribe_shared.models import NotificationJob
from tribe_shared.outbox import HAND_OVER_HORIZON, JobRef, Outbox

log = logging.getLogger(__name__)

#: Jobs younger than this are left to the request that created them, which hands them over
#: itself right after its commit; the relay is for what that could not do.
GRACE = timedelta(seconds=10)
BATCH_SIZE = 500

_urgency_rank = Case(NotificationJob.urgency, list(URGENCY_RANK.items()), len(URGENCY_RANK))


def relay_pending_jobs(
    outbox: Outbox, *, clock: Callable[[], datetime], batch_size: int = BATCH_SIZE
) -> int:
    """Hand over due ``pending`` jobs in batches until none is left; return how many."""
    total = 0
    while True:
        now = clock()
        with locking_transaction():
            query = (
                NotificationJob.select()
                .where(
                    NotificationJob.status == JobStatus.PENDING,
                    NotificationJob.scheduled_for <= now + HAND_OVER_HORIZON,
                    NotificationJob.created_at <= now - GRACE,
                )
                .order_by(_urgency_rank, NotificationJob.scheduled_for, NotificationJob.created_at)
                .limit(batch_size)
            )
            if is_postgres():
                query = query.for_update(skip_locked=True)
            jobs = [JobRef.of(job) for job in query]
            handed = outbox.relay(jobs, now) if jobs else set()
        total += len(handed)
        if len(jobs) < batch_size or len(handed) < len(jobs):
            break
    if total:
        log.info("relayed %d pending job(s) to the broker", total)
    return total
