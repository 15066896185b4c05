"""A digest's content: the group's updates over a window, and the email they make.

The worker's ``build_digest`` (:mod:`tribe_worker.digest_build`) renders a digest's window with
these functions, and the API's preview (``GET /api/digest-schedules/{id}/preview``) renders the
window that is open now with the same ones, so the preview is the digest that would be sent.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tribe_shared.contract import DIGEST_TEMPLATE
from tribe_shared.emails.render import RenderedEmail, render_email
from tribe_shared.models import DigestSchedule, Group, Recipient, Update


def window_start(schedule: DigestSchedule) -> datetime:
    """Where the schedule's next digest begins: after its last sent one, or its creation."""
    return schedule.last_digest_sent or schedule.created_at


def updates_in(
    schedule: DigestSchedule, start: datetime, end: datetime
) -> tuple[list[Update], int]:
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


def render_digest(
    schedule: DigestSchedule,
    recipient: Recipient,
    start: datetime,
    shown: list[Update],
    total: int,
    links: dict,
    summary: str | None = None,
) -> RenderedEmail:
    """The digest email of ``shown`` (of ``total``) since ``start``: times in the schedule's
    timezone, ``summary`` (when there is one) at its top, ``links`` in its footer."""
    zone = ZoneInfo(schedule.timezone)
    group_name = Group.select(Group.name).where(Group.id == schedule.group_id).scalar()
    data = {
        "frequency": schedule.frequency,
        "group_name": group_name,
        "recipient_name": recipient.name,
        "since": _local(start, zone, "%A %-d %B"),
        "total": total,
        "more": total - len(shown),
        "summary": summary,
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
    return render_email(DIGEST_TEMPLATE, data)


def _local(instant: datetime, zone: ZoneInfo, pattern: str) -> str:
    return instant.astimezone(zone).strftime(pattern)
