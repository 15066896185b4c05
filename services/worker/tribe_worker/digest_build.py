"""Building a digest email: a group's updates over the window a digest job covers.

A digest covers the group's updates created after its schedule's ``last_digest_sent`` (or the
schedule's creation) up to the ``window_end`` its job was made with, so an update posted while
the digest is built waits for the next one. Only a sent digest moves ``last_digest_sent`` (in
the same statement batch that marks the job ``sent``), so an update is in exactly one digest: a
digest that fails leaves its updates to the next. Digests of one schedule are built one after
the other: a digest whose schedule has an earlier one still to finish (held back by a provider
outage, say) waits for it, instead of reading the same ``last_digest_sent`` and sending the same
updates again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from peewee import Query

from tribe_shared.contract import DIGEST_TEMPLATE, DeliveryMethod, Frequency, JobStatus
from tribe_shared.models import (
    DigestSchedule,
    Group,
    GroupMembership,
    NotificationJob,
    Recipient,
    Update,
)
from tribe_worker.emails.providers import RenderedEmail
from tribe_worker.emails.render import render_email

#: A digest in one of these has yet to send or give up: a later one of its schedule waits.
UNFINISHED = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING)

HEADINGS = {
    Frequency.DAILY: "Your daily digest",
    Frequency.WEEKLY: "Your weekly digest",
    Frequency.MONTHLY: "Your monthly digest",
}


@dataclass(frozen=True)
class DigestEmail:
    """A digest ready to send to ``address`` (an email address, or a phone number for the
    text channels, whose ``email`` is None: they render ``data`` as text); ``advance`` records
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
    *,
    channel: str = DeliveryMethod.EMAIL,
) -> DigestEmail | DigestSkip | DigestWait:
    """Collect the updates of the job's window and render them (with ``links``: the mute and
    unsubscribe URLs its footer shows), say why there is nothing, or that an earlier digest of
    the schedule must finish first.

    A recipient on several channels gets one digest job per channel for each run, all of the
    same window: the first one sent moves ``last_digest_sent`` to the window's end, so the
    others start where the first one started (recorded on it as ``window_start``)."""
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
    window_start = schedule.last_digest_sent or schedule.created_at
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
    shown, total = _updates_in(schedule, window_start, window_end)
    if not shown:
        return DigestSkip("No updates since the last digest", advance)
    started = NotificationJob.update(
        content={**job.content, "window_start": window_start.isoformat()}
    ).where(NotificationJob.id == job.id)
    data = _data(schedule, recipient, window_start, shown, total, links or {})
    if channel != DeliveryMethod.EMAIL:
        if not recipient.phone:
            return DigestSkip("The recipient has no phone number")
        return DigestEmail(None, recipient.phone, advance, data, started)
    if not recipient.email:
        return DigestSkip("The recipient has no email address")
    email = render_email(DIGEST_TEMPLATE, data)
    return DigestEmail(email, recipient.email, advance, data, started)


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


def _updates_in(schedule: DigestSchedule, start: datetime, end: datetime):
    """The newest updates of the window that the schedule shows, and how many it holds."""
    in_window = Update.select().where(
        Update.group == schedule.group_id,
        Update.created_at > start,
        Update.created_at <= end,
    )
    if schedule.include_content_types:
        in_window = in_window.where(Update.content_type.in_(schedule.include_content_types))
    newest_first = in_window.order_by(Update.created_at.desc(), Update.id.desc())
    shown = list(newest_first.limit(schedule.max_updates_per_digest))
    total = len(shown)
    if total == schedule.max_updates_per_digest:
        total = in_window.count()
    return shown, total


def _data(schedule, recipient: Recipient, start: datetime, shown: list[Update], total, links):
    """What the digest shows: its updates' times in the schedule's timezone."""
    zone = ZoneInfo(schedule.timezone)
    group_name = Group.select(Group.name).where(Group.id == schedule.group_id).scalar()
    data = {
        "heading": HEADINGS.get(schedule.frequency, "Your digest"),
        "group_name": group_name,
        "recipient_name": recipient.name,
        "intro": f"{_plural(total, 'update')} since {_local(start, zone, '%A %-d %B')}",
        "total": total,
        "more": total - len(shown),
        "updates": [
            {
                "title": update.title,
                "body": update.body,
                "content_type": update.content_type,
                "media_urls": update.media_urls or [],
                "posted": _local(update.created_at, zone, "%a %-d %b, %H:%M"),
            }
            for update in shown
        ],
        **links,
    }
    return data


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


def _local(instant: datetime, zone: ZoneInfo, pattern: str) -> str:
    return instant.astimezone(zone).strftime(pattern)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
