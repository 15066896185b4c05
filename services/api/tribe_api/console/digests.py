"""The digests: schedules due soon, paused ones, the last digests, and a schedule's preview."""

from __future__ import annotations

from uuid import UUID

import falcon

from tribe_api.console import reads
from tribe_api.console.common import Page
from tribe_api.previews import preview_digest
from tribe_shared.emails.digest import updates_in, window_start
from tribe_shared.models import DigestSchedule, Recipient


class DigestsPage(Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        self.render(resp, "console/digests.html", session, view=reads.digests(self.console.clock()))


class DigestPreviewPage(Page):
    """What a schedule's next digest would hold if it were built now: its updates (the same
    selection the worker's build makes, :func:`tribe_shared.emails.digest.updates_in`) and the
    email itself, or why none would go (:func:`tribe_api.previews.preview_digest`); nothing is
    sent or changed."""

    def on_get(self, req, resp, schedule_id: UUID):
        session = self.session(req, resp)
        schedule = (
            DigestSchedule.select(DigestSchedule, Recipient)
            .join(Recipient, on=(DigestSchedule.recipient == Recipient.id))
            .where(DigestSchedule.id == schedule_id)
            .first()
        )
        if schedule is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"No schedule {schedule_id}")
        now = self.console.clock()
        start = window_start(schedule)
        shown, total = updates_in(schedule, start, now) if now > start else ([], 0)
        self.render(
            resp,
            "console/digest_preview.html",
            session,
            schedule=schedule,
            start=start,
            now=now,
            shown=shown,
            total=total,
            preview=preview_digest(schedule, self.console.email_links, now),
        )
