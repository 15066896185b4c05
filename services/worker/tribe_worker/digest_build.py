"""Building a digest email: a group's updates over the window a digest job covers.

A digest covers the group's updates created after its schedule's ``last_digest_sent`` (or the
schedule's creation) up to the ``window_end`` its job was made with, so an update posted while
the digest is built waits for the next one. Only a sent digest moves ``last_digest_sent`` (in
the same statement batch that marks the job ``sent``), so an update is in exactly one digest: a
digest that fails leaves its updates to the next. Digests of one schedule are built one after
the other: a digest whose schedule has an earlier one still to finish (held back by a provider
outage, say) waits for it, instead of reading the same ``last_digest_sent`` and sending the same
updates again.

A recipient on several channels gets one digest job per channel for each run, all of the same
window: the first one sent moves ``last_digest_sent`` to the window's end, so the others start
where the first one started (recorded on it as ``window_start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from peewee import Query

from tribe_shared.contract import DeliveryMethod, JobStatus
from tribe_shared.emails.digest import digest_data, render_digest, updates_in
from tribe_shared.emails.digest import window_start as digest_window_start
from tribe_shared.emails.render import RenderedEmail
from tribe_shared.models import DigestSchedule, Group, GroupMembership, NotificationJob, Recipient
from tribe_worker.summaries import Summarizer, summary_of

#: A digest in one of these has yet to send or give up: a later one of its schedule waits.
UNFINISHED = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING)


@dataclass(frozen=True)
class DigestEmail:
    """A digest ready to send to ``address`` (an email address, or a phone number for the
    text channels, whose ``email`` is None: they write ``data`` as text); ``advance`` records
    it as sent on the schedule."""

    email: RenderedEmail | None
    address: str
    advance: Query
    data: dict
    #: Records on the job where its window started (for its siblings on other channels).
    started: Query


@dataclass(frozen=True)
class DigestWait:
    """Not now: an earlier digest of the same schedule has not finished."""


@dataclass(frozen=True)
class DigestSkip:
    """Nothing to send, and why; ``advance`` (when set) closes the window all the same."""

    reason: str
    advance: Query | None = None


def compose_digest(
    job: NotificationJob,
    recipient: Recipient | None,
    links: dict | None = None,
    summarizer: Summarizer | None = None,
    *,
    channel: str = DeliveryMethod.EMAIL,
) -> DigestEmail | DigestSkip | DigestWait:
    """Collect the updates of the job's window and render them for ``channel`` (with
    ``links``: the mute and unsubscribe URLs its footer shows, and an AI summary at the top
    when the group asked for one: :mod:`tribe_worker.summaries`), say why there is nothing, or
    that an earlier digest of the schedule must finish first."""
    schedule = DigestSchedule.get_or_none(DigestSchedule.id == job.digest_schedule_id)
    if schedule is None:
        return DigestSkip("The digest schedule was deleted")
    if job.digest_period is not None and _earlier_unfinished(job):
        return DigestWait()
    if recipient is None:
        return DigestSkip("The recipient was deleted")
    member = GroupMembership.select().where(
        GroupMembership.group == schedule.group_id, GroupMembership.recipient == recipient.id
    )
    if not member.exists():
        return DigestSkip("The recipient is no longer in the group")
    window_end = datetime.fromisoformat(job.content["window_end"])
    window_start = digest_window_start(schedule)
    if window_end <= window_start:
        window_start = _sibling_start(job)
        if window_start is None or window_end <= window_start:
            return DigestSkip("A later digest already covered this period")
    advance = (
        DigestSchedule.update(last_digest_sent=window_end)
        .where(DigestSchedule.id == schedule.id)
        .where(
            DigestSchedule.last_digest_sent.is_null()
            | (DigestSchedule.last_digest_sent < window_end)
        )
    )
    shown, total = updates_in(schedule, window_start, window_end)
    if not shown:
        return DigestSkip("No updates since the last digest", advance)
    address = recipient.email if channel == DeliveryMethod.EMAIL else recipient.phone
    if not address:
        what = "email address" if channel == DeliveryMethod.EMAIL else "phone number"
        return DigestSkip(f"The recipient has no {what}")
    summary, content = None, job.content
    if Group.select(Group.ai_summary).where(Group.id == schedule.group_id).scalar():
        summary, content = summary_of(job, shown, recipient.locale, summarizer)
    started = NotificationJob.update(
        content={**content, "window_start": window_start.isoformat()}
    ).where(NotificationJob.id == job.id)
    data = digest_data(schedule, recipient, window_start, shown, total, links or {}, summary)
    if channel != DeliveryMethod.EMAIL:
        return DigestEmail(None, address, advance, data, started)
    return DigestEmail(render_digest(data, recipient), address, advance, data, started)


def _sibling_start(job: NotificationJob) -> datetime | None:
    """Where a digest of the same run on another channel, already sent, started its window."""
    sent = (
        NotificationJob.select(NotificationJob.content)
        .where(
            NotificationJob.digest_schedule == job.digest_schedule_id,
            NotificationJob.digest_period == job.digest_period,
            NotificationJob.delivery_method != job.delivery_method,
            NotificationJob.status == JobStatus.SENT,
        )
        .tuples()
    )
    starts = [c.get("window_start") for (c,) in sent if isinstance(c, dict)]
    return min((datetime.fromisoformat(s) for s in starts if s), default=None)


def _earlier_unfinished(job: NotificationJob) -> bool:
    """Whether a digest of the job's schedule for an earlier run has yet to finish."""
    return (
        NotificationJob.select(NotificationJob.id)
        .where(
            NotificationJob.digest_schedule == job.digest_schedule_id,
            NotificationJob.digest_period < job.digest_period,
            NotificationJob.status.in_(UNFINISHED),
        )
        .exists()
    )
