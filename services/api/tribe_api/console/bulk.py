"""Bulk retry and cancel by filter: the count and a confirmation, the action (done in the
background by the worker), and its progress.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

import falcon

from tribe_api.console.common import Page, filters_of, log, query_of
from tribe_shared import bulk, job_filters
from tribe_shared.models import BulkAction


class BulkPage(Page):
    """``GET /admin/bulk?action=retry&<filters>``: the count and a confirmation (changes
    nothing); ``POST /admin/bulk``: the action, done in the background."""

    def on_get(self, req, resp):
        session = self.session(req, resp)
        kind = req.get_param("action")
        if kind not in (bulk.BulkKind.RETRY, bulk.BulkKind.CANCEL):
            raise falcon.HTTPBadRequest(title="Bad request", description="action: retry or cancel")
        filters, error = filters_of(req.params)
        count = None if error else self.console.actions.count(kind, filters)
        self.render(
            resp,
            "console/bulk.html",
            session,
            falcon.HTTP_400 if error else falcon.HTTP_200,
            kind=kind,
            filters=job_filters.to_json(filters),
            count=count,
            error=error,
            query=query_of(filters),
        )

    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        kind = form.get("action")
        filters, error = filters_of(form)
        if kind not in (bulk.BulkKind.RETRY, bulk.BulkKind.CANCEL) or error:
            raise falcon.HTTPBadRequest(title="Bad request", description=error or "action")
        action = self.console.actions.ask(kind, filters, f"console:{session.operator}")
        log.info(
            "console: %s asked to %s %d job(s) matching %s (action %s)",
            session.operator,
            kind,
            action.matched,
            action.filters,
            action.id,
            extra={"operator": session.operator, "action": kind, "jobs": action.matched},
        )
        raise falcon.HTTPSeeOther(f"/admin/actions/{action.id}")


class ActionPage(Page):
    def on_get(self, req, resp, action_id: UUID):
        session = self.session(req, resp)
        action = BulkAction.get_or_none(BulkAction.id == action_id)
        if action is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"No action {action_id}")
        self.render(
            resp,
            "console/action.html",
            session,
            action=action,
            query=urlencode(action.filters),
            running=action.status == bulk.BulkStatus.RUNNING,
        )
