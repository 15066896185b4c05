"""Every actor of the worker, each a plain function of what it works with (:class:`Context`) and
its message's arguments.

Messages carry job ids, never jobs: the row is the truth, and every actor is safe to run twice.
:mod:`tribe_worker.worker` binds each function to its actor name, queue and priority on a broker
(the delivery actors twice: on ``emails`` and on the urgent lane).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from dramatiq.middleware import CurrentMessage

from tribe_shared import bulk
from tribe_shared.contract import Actor
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import dead_letter_of
from tribe_shared.settings import Settings
from tribe_worker import digest_scan, reaper, recording, relay, retention
from tribe_worker.delivery import Delivery, deliver
from tribe_worker.job_events import Attempt, JobEvents

#: A relay tick repeats every ``OUTBOX_POLL_SECONDS`` for this long (less than its minute).
TICK_SECONDS = 45.0
#: Extra messages a digest tick sends when more schedules are due than one batch: each runs the
#: scan too, on another worker thread or process, taking batches the others have not locked.
DIGEST_TICK_HELPERS = 3


@dataclass(frozen=True)
class Context:
    """What the actors work with, built once per worker by ``build_worker``."""

    broker: dramatiq.Broker
    outbox: Outbox
    delivery: Delivery
    settings: Settings
    clock: Callable[[], datetime]


# --- delivering jobs ------------------------------------------------------------------------


def send_email(context: Context, job_id: str) -> None:
    """An ad-hoc email (send-email, or one email of a bulk request)."""
    _deliver(context, job_id)


def send_email_batch(context: Context, job_ids: list[str]) -> None:
    """Identical emails of a bulk request: one provider call for up to 1000 of them."""
    _deliver(context, job_ids)


def dispatch_notification(context: Context, job_ids: str | list[str]) -> None:
    """A notification to a recipient, or up to 50 of one update's (each sent on its own)."""
    _deliver(context, job_ids)


def build_digest(context: Context, job_ids: str | list[str]) -> None:
    """A digest of a group's updates, or several digests made by one scan."""
    _deliver(context, job_ids)


def _deliver(context: Context, arg: str | list[str]) -> None:
    message = CurrentMessage.get_current_message()
    # The Retries middleware retries while the retries so far are below the maximum.
    retries = message.options.get("retries", 0) if message else 0
    attempt = Attempt(
        message.actor_name if message else "", will_retry=retries < context.settings.max_retries
    )
    deliver([UUID(job_id) for job_id in _ids(arg)], context.delivery, attempt)


def mark_job_failed(context: Context, message: dict, retry_info: dict) -> None:
    """The ``on_retry_exhausted`` callback of every delivery actor: its jobs are ``failed``."""
    (arg,) = message["args"]
    retries = retry_info.get("retries", 0)
    job_ids = [UUID(job_id) for job_id in _ids(arg)]
    failed = recording.exhausted(job_ids, retries, dead_letter_of(message), context.clock())
    JobEvents(Attempt(message["actor_name"], will_retry=False)).exhausted(failed, retries)


def _ids(arg: str | list[str]) -> list[str]:
    return arg if isinstance(arg, list) else [arg]


# --- periodic: the scheduler's ticks --------------------------------------------------------


def relay_pending_jobs(context: Context, ends_at: float | None = None) -> None:
    """Hand pending jobs over; the minute's tick repeats every ``OUTBOX_POLL_SECONDS``.

    Each repeat is a delayed message of its own, not a sleeping thread, so a worker that is
    shutting down never waits for the rest of the minute.
    """
    ends_at = ends_at or context.clock().timestamp() + TICK_SECONDS
    relay.relay_pending_jobs(context.outbox, clock=context.clock)
    poll = context.settings.outbox_poll_seconds
    if context.clock().timestamp() + poll < ends_at:
        again = context.broker.get_actor(Actor.RELAY_PENDING_JOBS.value)
        again.send_with_options(args=(ends_at,), delay=int(poll * 1000))


def reap_stuck_jobs(context: Context) -> None:
    """Take back jobs whose worker died or whose message was lost (:mod:`tribe_worker.reaper`)."""
    settings = context.settings
    reaper.reap_stuck_jobs(
        context.broker,
        clock=context.clock,
        lease=timedelta(seconds=settings.job_lease_seconds),
        stale=timedelta(seconds=settings.queued_stale_seconds),
    )


def schedule_due_digests(context: Context, helping: bool = False) -> None:
    """Turn due digest schedules into digest jobs; a backlog calls helper ticks."""

    def call_for_help() -> None:
        if not helping:
            helper = context.broker.get_actor(Actor.SCHEDULE_DUE_DIGESTS.value)
            for _ in range(DIGEST_TICK_HELPERS):
                helper.send(True)

    digest_scan.schedule_due_digests(context.outbox, clock=context.clock, on_backlog=call_for_help)


def apply_retention(context: Context) -> None:
    """Delete finished jobs past ``JOB_RETENTION_DAYS`` and scrub those past
    ``CONTENT_RETENTION_DAYS`` (:mod:`tribe_worker.retention`), for up to 40 s a tick."""
    settings = context.settings
    retention.apply_retention(
        job_days=settings.job_retention_days,
        content_days=settings.content_retention_days,
        clock=context.clock,
    )


# --- asked for: bulk actions ------------------------------------------------------------------


def run_bulk_action(context: Context, action_id: str) -> None:
    """Retry or cancel every job a recorded bulk action's filter matches, in bounded batches
    (:mod:`tribe_shared.bulk`); run again after a failure, it goes on where it stopped."""
    bulk.run(UUID(action_id), context.outbox, context.clock)
