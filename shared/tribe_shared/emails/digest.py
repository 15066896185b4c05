"""A digest's content: the group's updates over a window, and the email they make.

The worker's ``build_digest`` (:mod:`tribe_worker.digest_build`) renders a digest's window with
these functions, and the API's preview (``GET /api/digest-schedules/{id}/preview``) renders the
window that is open now with the same ones, so the preview is the digest that would be sent.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time

from tribe_shared.contract import DIGEST_TEMPLATE
from tribe_shared.emails.render import DEFAULT_LANGUAGE, RenderedEmail, render_email
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


#: A digest's heading by its schedule's frequency (the English the text messages use; the email
#: templates write their own, in each language).
HEADINGS = {
    "daily": "Your daily digest",
    "weekly": "Your weekly digest",
    "monthly": "Your monthly digest",
}


def digest_data(
    schedule: DigestSchedule,
    recipient: Recipient,
    start: datetime,
    shown: list[Update],
    total: int,
    links: dict,
    summary: str | None = None,
) -> dict:
    """What the digest of ``shown`` (of ``total``) since ``start`` shows, in the recipient's
    language: dates and times written for their locale in the schedule's timezone, ``summary``
    (when there is one) at its top, ``links`` in its footer. The email renders it
    (:func:`render_digest`), a text message writes it short."""
    zone = ZoneInfo(schedule.timezone)
    locale = babel_locale(recipient.locale)
    group_name = Group.select(Group.name).where(Group.id == schedule.group_id).scalar()
    return {
        "frequency": schedule.frequency,
        "heading": HEADINGS.get(schedule.frequency, "Your digest"),
        "group_name": group_name,
        "recipient_name": recipient.name,
        "since": format_date(start.astimezone(zone).date(), "full", locale=locale),
        "total": total,
        "more": total - len(shown),
        "summary": summary,
        "updates": [
            {
                "title": update.title,
                "body": update.body,
                "content_type": update.content_type,
                "media_urls": update.media_urls or [],
                "posted": posted(update.created_at, zone, locale),
            }
            for update in shown
        ],
        **links,
    }


def render_digest(data: dict, recipient: Recipient) -> RenderedEmail:
    """The digest email of :func:`digest_data`, in the recipient's language."""
    return render_email(DIGEST_TEMPLATE, data, locale=recipient.locale)


def babel_locale(locale: str | None) -> Locale:
    """Babel's locale for a recipient's (``es-MX``), English when it has none Babel knows."""
    try:
        return Locale.parse((locale or DEFAULT_LANGUAGE).replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LANGUAGE)


def posted(instant: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """When an update was posted, in ``zone``, as ``locale`` writes a short day and a time:
    "Sat, Dec 5, 10:30 AM", "sáb, 5 dic, 10:30"."""
    day = format_skeleton("MMMEd", instant, tzinfo=zone, locale=locale)
    return f"{day}, {format_time(instant, 'short', tzinfo=zone, locale=locale)}"
