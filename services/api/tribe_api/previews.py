"""Previews: what an email or a schedule's next digest would look like, rendered by the very
templates and digest code the worker sends with (:mod:`tribe_shared.emails`).

A preview reads and renders; it never writes, sends, or asks the AI model (a digest's summary
is written when the digest is built, off the request path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import falcon

from tribe_shared import texts
from tribe_shared.emails.digest import digest_data, render_digest, updates_in, window_start
from tribe_shared.emails.render import (
    RENDERED_TYPES,
    RenderedEmail,
    RenderError,
    language_of,
    render_email,
)
from tribe_shared.emails.unsubscribe_links import MUTE_URL, UnsubscribeLinks
from tribe_shared.models import DigestSchedule, Group, GroupUnsubscribe, Recipient


@dataclass(frozen=True)
class EmailLinks:
    """The links an update or digest email carries: the app's mute page (``PUBLIC_BASE_URL``)
    and the signed unsubscribe link (``API_PUBLIC_URL``); None leaves each out, as the worker
    does."""

    public_base_url: str | None
    unsubscribe: UnsubscribeLinks | None

    def of(self, recipient_id, group_id, now: datetime) -> dict:
        mute = None
        if self.public_base_url is not None:
            mute = MUTE_URL.format(base=self.public_base_url, recipient_id=recipient_id)
        unsubscribe = None
        if self.unsubscribe is not None:
            unsubscribe = self.unsubscribe.link(recipient_id, group_id, now).url
        return {"mute_url": mute, "unsubscribe_url": unsubscribe}


def present(email: RenderedEmail, locale: str | None) -> dict:
    return {
        "subject": email.subject,
        "html": email.html,
        "text": email.text,
        "language": language_of(locale),
    }


def preview_template(email_type: str, fields: dict) -> dict:
    """``email_type`` rendered with the body's ``templateData`` (and ``subject``, ``locale``);
    an unknown type is a 404, data the template cannot render a 422."""
    if email_type not in RENDERED_TYPES:
        raise falcon.HTTPNotFound(
            title="Not found",
            description=f"No email type {email_type!r}; the types are {', '.join(RENDERED_TYPES)}",
        )
    locale = fields.get("locale")
    try:
        email = render_email(
            email_type, fields["templateData"], fields.get("subject"), locale=locale
        )
    except RenderError as exc:
        raise falcon.HTTPUnprocessableEntity(title="Cannot render", description=str(exc)) from exc
    return {"type": email_type, **present(email, locale)}


def preview_digest(schedule: DigestSchedule, links: EmailLinks, now: datetime) -> dict:
    """The digest the schedule would send if it were built ``now``: the window from its last
    digest to now, rendered for its recipient; or why there would be none."""
    recipient = Recipient.get_by_id(schedule.recipient_id)
    start = window_start(schedule)
    shown, total = updates_in(schedule, start, now) if now > start else ([], 0)
    opted_in = Group.select(Group.ai_summary).where(Group.id == schedule.group_id).scalar()
    preview = {
        "schedule_id": schedule.id,
        "window_start": start,
        "window_end": now,
        "updates": total,
        "shown": len(shown),
        "ai_summary": bool(opted_in),
        "would_send": False,
        "email": None,
    }
    reason = _why_not(schedule, recipient, shown, now)
    if reason is not None:
        return {**preview, "reason": reason}
    locale = recipient.locale
    footer = links.of(recipient.id, schedule.group_id, now)
    data = digest_data(schedule, recipient, start, shown, total, footer)
    email = render_digest(data, recipient)
    text = texts.digest_text(
        data["heading"], data["group_name"], data["updates"], data["more"], channel="sms"
    )
    segments = texts.count_segments(text)
    sms = {"text": text, "encoding": segments.encoding, "segments": segments.count}
    return {**preview, "would_send": True, "email": present(email, locale), "sms": sms}


def _why_not(schedule, recipient: Recipient, shown: list, now: datetime) -> str | None:
    """Why the digest would not be sent now (the worker's reasons), or None."""
    if not schedule.is_active:
        return "The schedule is paused"
    if not shown:
        return "No updates since the last digest"
    if not recipient.email:
        return "The recipient has no email address"
    if recipient.muted_until is not None and recipient.muted_until > now:
        return "muted"
    left = GroupUnsubscribe.select().where(
        GroupUnsubscribe.recipient == recipient.id, GroupUnsubscribe.group == schedule.group_id
    )
    if left.exists():
        return "unsubscribed from the group's emails"
    return None
