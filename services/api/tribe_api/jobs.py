"""Jobs as their owners see them: the list (filtered, sorted, paginated), cancel and retry.

Each list sort reads in the order of an index (migrations 0004, 0006 and 0007), with or without
the owner before it, so a page costs the same at any depth of a million jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import falcon

from tribe_api.access import owned, visible
from tribe_api.auth import Principal
from tribe_shared import job_filters
from tribe_shared.contract import CLAIMABLE_STATUSES, JobStatus
from tribe_shared.models import Group, NotificationJob, Recipient, Update
from tribe_shared.outbox import JobRef, Outbox
from tribe_shared.redis_broker import forget_dead_letter

#: ``pagination.total`` is exact up to this many matching jobs (``total_is_exact`` says which).
COUNT_CAP = 10_000
#: The list's filters (:mod:`tribe_shared.job_filters`): equality on a field of the job
#: (``to`` the address, ``request_id`` the originating request), ``created_after`` and
#: ``created_before`` a range.
FILTERS = job_filters.FILTER_NAMES

#: What each sort orders by: the field, then ties broken stably (status: newest first, when
#: descending). Every key reads in the order of an index, with or without the owner before it.
SORT_KEYS = {
    "created_at": (NotificationJob.created_at, NotificationJob.id),
    "scheduled_for": (NotificationJob.scheduled_for, NotificationJob.id),
    "processed_at": (NotificationJob.processed_at, NotificationJob.id),
    "status": (NotificationJob.status, NotificationJob.created_at, NotificationJob.id),
}


@dataclass(frozen=True)
class Page:
    jobs: list[NotificationJob]
    #: The matches, counted up to one past :data:`COUNT_CAP`.
    counted: int
    has_more: bool


def list_jobs(principal: Principal, filters: dict, sort: str, descending: bool, limit, offset):
    """A page of the caller's jobs matching ``filters`` (:data:`FILTERS`; None: any).

    A ``recipient_id``, ``group_id`` or ``update_id`` that is not the caller's is a 404, as
    everywhere.
    """
    if filters.get("recipient_id") is not None:
        owned(Recipient, filters["recipient_id"], principal, "recipient_id")
    if filters.get("group_id") is not None:
        owned(Group, filters["group_id"], principal, "group_id")
    if filters.get("update_id") is not None:
        owned(Update, filters["update_id"], principal, "update_id")
    jobs = job_filters.matching(visible(NotificationJob, principal), filters)
    page = _page(jobs, sort, descending, limit + 1, offset)
    counted = capped(jobs).count()
    return Page(page[:limit], counted, len(page) > limit)


def sorted_parts(jobs, sort: str, descending: bool) -> list:
    """``jobs`` in the order of ``sort``: queries to read one after the other, each in the order
    of an index.

    One query, except for ``processed_at``: jobs not yet processed have none and come last in
    either order, which no single index order gives; they are a second part, after the
    processed ones, so neither part is ever sorted in full.
    """
    keys = [key.desc() if descending else key.asc() for key in SORT_KEYS[sort]]
    if sort != "processed_at":
        return [jobs.order_by(*keys)]
    processed_at = NotificationJob.processed_at
    return [
        jobs.where(processed_at.is_null(False)).order_by(*keys),
        jobs.where(processed_at.is_null()).order_by(*keys),
    ]


def capped(jobs):
    """The matches to count: counting a huge match exactly costs more than the page, so up to
    one past :data:`COUNT_CAP`."""
    return jobs.select(NotificationJob.id).limit(COUNT_CAP + 1)


def _page(jobs, sort: str, descending: bool, limit: int, offset: int) -> list:
    """``limit`` jobs of ``jobs`` from ``offset``, in the order of ``sort``."""
    page: list = []
    parts = sorted_parts(jobs, sort, descending)
    for number, part in enumerate(parts, start=1):
        rows = list(part.limit(limit - len(page)).offset(offset))
        page += rows
        if len(page) == limit or number == len(parts):
            break
        # This part ran out: within the page (the next starts at once) or before it.
        offset = 0 if rows else max(0, offset - part.count())
    return page


def cancel_waiting(condition, now: datetime, reason: str | None = None) -> int:
    """Cancel the jobs matching ``condition`` that no worker has started; return how many.

    A cancelled job is never sent, even if its message is already queued: the worker's claim
    takes only ``pending`` and ``queued`` jobs.
    """
    return (
        NotificationJob.update(status=JobStatus.CANCELLED, processed_at=now, failure_reason=reason)
        .where(condition, NotificationJob.status.in_(list(CLAIMABLE_STATUSES)))
        .execute()
    )


def cancel_job(job: NotificationJob, now: datetime) -> NotificationJob:
    """Cancel one job not yet started; a 409 for any other (it says which status it has)."""
    cancelled = cancel_waiting(NotificationJob.id == job.id, now)
    job = NotificationJob.get_by_id(job.id)
    if not cancelled:
        raise falcon.HTTPConflict(
            title="Conflict",
            description=f"Only a pending or queued job can be cancelled; it is {job.status}",
        )
    return job


def retry_job(job: NotificationJob, outbox: Outbox, now: datetime) -> NotificationJob:
    """Send a failed job again now, with a fresh retry budget; its dead letter is removed. A 409
    for a job that has not failed, or whose content retention has scrubbed (nothing to send)."""
    if job.scrubbed_at is not None:
        raise falcon.HTTPConflict(
            title="Conflict",
            description="This job's address and content were scrubbed by retention: "
            "it cannot be sent again",
        )
    ref = JobRef.of(job)
    ref.scheduled_for = now
    staged = outbox.stage([ref], now)
    retried = (
        NotificationJob.update(
            status=ref.status,
            queued_at=ref.queued_at,
            retry_count=0,
            lease_losses=0,
            failure_reason=None,
            processed_at=None,
            claimed_at=None,
            dead_letter=None,
            scheduled_for=now,
        )
        .where(NotificationJob.id == job.id, NotificationJob.status == JobStatus.FAILED)
        .execute()
    )
    if not retried:
        raise falcon.HTTPConflict(
            title="Conflict",
            description=f"Only a failed job can be retried; this one is {job.status}",
        )
    forget_dead_letter(outbox.broker, job.dead_letter)
    job = NotificationJob.get_by_id(job.id)
    outbox.send(staged)
    # As handed over (a worker may already be at it): queued, or pending for the relay.
    job.status, job.queued_at = ref.status, ref.queued_at
    return job
