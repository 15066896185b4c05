"""The suppression list, searched by address, and lifting a suppression."""

from __future__ import annotations

import falcon

from tribe_api.console import reads
from tribe_api.console.common import NOTICES, Page, log
from tribe_shared.models import Suppression


class SuppressionsPage(Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        email = (req.get_param("email") or "").strip()
        self.render(
            resp,
            "console/suppressions.html",
            session,
            rows=reads.suppressions(email or None),
            email=email,
            page_notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        """Lift a suppression (as ``DELETE /api/suppressions/{email}`` does)."""
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        address = (form.get("email") or "").strip().lower()
        lifted = (
            Suppression.delete()
            .where(Suppression.email == address, Suppression.suppressed_at.is_null(False))
            .execute()
        )
        log.info(
            "console: %s lifted the suppression of %s (%d)",
            session.operator,
            address,
            lifted,
            extra={"operator": session.operator, "action": "lift", "jobs": 0},
        )
        raise falcon.HTTPSeeOther("/admin/suppressions?notice=lifted")
