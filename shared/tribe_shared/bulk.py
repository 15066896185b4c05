"""Bulk actions: retry every failed job a filter matches, or cancel every waiting one.

The API records the action (:func:`start`: who, what, the filter, how many match) and hands its
id to the worker, whose ``run_bulk_action`` actor calls :func:`run`: the matching jobs are taken
:data:`BATCH_SIZE` at a time in ``(created_at, id)`` order (an index's order, so each batch
reads only its own rows), each batch acted on and recorded in ``bulk_action_jobs`` in one
transaction, and the progress (``acted``) written with it. A run that stops half way (a worker
killed, the database down) is run again by the broker's retry and goes on where it was: what
was done no longer matches (a retried job is not ``failed``, a cancelled one not waiting).

Retried jobs are handed over with the outbox after each batch commits, exactly as one retried
by ``POST /api/jobs/{id}/retry``: a fresh retry budget, their dead letters removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from tribe_shared import job_filters
from tribe_shared.contract import CLAIMABLE_STATUSES, JobStatus
from tribe_shared.db import database, is_postgres
from tribe_shared.models import BulkAction, BulkActionJob, NotificationJob
from tribe_shared.outbox import JobRef, Outbox
from tribe_shared.redis_broker import forget_dead_letter

log = logging.getLogger(__name__)

#: Jobs acted on per transaction: short enough that no lock is held for long.
BATCH_SIZE = 500


class BulkKind(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"


class BulkStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def targets(kind: str, filters: dict):
    """The jobs ``kind`` would act on: the failed ones the filter matches that still have
    their content (retry), or the waiting ones (cancel)."""
    jobs = job_filters.matching(NotificationJob.select(), filters)
    if kind == BulkKind.RETRY:
        return jobs.where(
            NotificationJob.status == JobStatus.FAILED, NotificationJob.scrubbed_at.is_null()
        )
    return jobs.where(NotificationJob.status.in_(list(CLAIMABLE_STATUSES)))


def count(kind: str, filters: dict) -> int:
    """How many jobs ``kind`` would act on now (what a dry run answers)."""
    return targets(kind, filters).count()


def start(kind: str, filters: dict, requested_by: str, now: datetime) -> BulkAction:
    """Record an action, with how many jobs it matches now; :func:`run` does it."""
    action = BulkAction.create(
        action=kind,
        filters=job_filters.to_json(filters),
        requested_by=requested_by[:200],
        matched=count(kind, filters),
        created_at=now,
    )
    log.info(
        "bulk %s %s asked by %s: %d job(s) match %s",
        kind,
        action.id,
        action.requested_by,
        action.matched,
        action.filters,
    )
    return action


def run(
    action_id: UUID,
    outbox: Outbox,
    clock: Callable[[], datetime],
    *,
    batch_size: int = BATCH_SIZE,
) -> BulkAction:
    """Do a recorded action, batch by batch, and mark it done (or failed, re-raising)."""
    action = BulkAction.get_by_id(action_id)
    if action.status != BulkStatus.RUNNING:
        return action
    filters = job_filters.from_json(action.filters)
    mark = None
    try:
        while True:
            batch = targets(action.action, filters).order_by(
                NotificationJob.created_at, NotificationJob.id
            )
            if mark is not None:
                batch = job_filters.after_key(batch, *mark, descending=False)
            rows = list(batch.limit(batch_size))
            if not rows:
                break
            mark = (rows[-1].created_at, rows[-1].id)
            _act(action, rows, outbox, clock())
    except Exception as exc:
        BulkAction.update(status=BulkStatus.FAILED, error=str(exc)[:500]).where(
            BulkAction.id == action.id
        ).execute()
        raise
    BulkAction.update(status=BulkStatus.DONE, finished_at=clock()).where(
        BulkAction.id == action.id
    ).execute()
    action = BulkAction.get_by_id(action.id)
    log.info("bulk %s %s done: %d job(s)", action.action, action.id, action.acted)
    return action


def _act(action: BulkAction, rows: list[NotificationJob], outbox: Outbox, now: datetime) -> None:
    """Act on one batch and record it, in one transaction; hand retried jobs over after it."""
    ids = [row.id for row in rows]
    with database.atomic():
        still = (
            targets(action.action, {}).select(NotificationJob.id).where(NotificationJob.id.in_(ids))
        )
        if is_postgres():
            # A job another action or the reaper holds now is left to it.
            still = still.for_update(skip_locked=True)
        acted = {row.id for row in still}
        if not acted:
            return
        if action.action == BulkKind.RETRY:
            _retry(acted, now)
        else:
            NotificationJob.update(
                status=JobStatus.CANCELLED, processed_at=now, failure_reason="cancelled in bulk"
            ).where(NotificationJob.id.in_(list(acted))).execute()
        BulkActionJob.insert_many(
            [{"action": action.id, "job_id": job_id, "acted_at": now} for job_id in acted]
        ).on_conflict_ignore().execute()
        BulkAction.update(acted=BulkAction.acted + len(acted)).where(
            BulkAction.id == action.id
        ).execute()
    if action.action == BulkKind.RETRY:
        retried = [row for row in rows if row.id in acted]
        for row in retried:
            forget_dead_letter(outbox.broker, row.dead_letter)
        refs = [JobRef.of(row) for row in retried]
        for ref in refs:
            ref.scheduled_for, ref.status = now, JobStatus.PENDING
        outbox.relay(refs, now)


def _retry(job_ids: set[UUID], now: datetime) -> None:
    """The jobs back to ``pending`` with a fresh retry budget, due now (the relay step that
    follows hands them to the broker)."""
    NotificationJob.update(
        status=JobStatus.PENDING,
        queued_at=None,
        retry_count=0,
        lease_losses=0,
        failure_reason=None,
        processed_at=None,
        claimed_at=None,
        dead_letter=None,
        scheduled_for=now,
    ).where(NotificationJob.id.in_(list(job_ids))).execute()
