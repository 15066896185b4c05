"""``POST /api/jobs/retry``, ``POST /api/jobs/cancel`` and ``GET /api/jobs/actions/{id}``:
every job a filter matches retried or cancelled, by the service role, with a dry run that only
counts; the worker does the work in bounded batches and records each job it acted on."""

from __future__ import annotations

from uuid import UUID

import falcon
from spectree import Response

from tribe_api.access import not_found
from tribe_api.bulk_actions import BulkActions, present_action
from tribe_api.errors import Code
from tribe_api.schemas.errors import Error
from tribe_api.schemas.jobs import BulkActionAnswer, BulkActionRequest
from tribe_api.spec import errors, spec
from tribe_shared import job_filters
from tribe_shared.bulk import BulkKind
from tribe_shared.models import BulkAction


def service_only(req, what: str) -> None:
    if not req.context.principal.is_service:
        raise falcon.HTTPForbidden(
            title="Forbidden",
            description=f"{what} with the service role",
            code=Code.SERVICE_ROLE_REQUIRED,
        )


def requester(principal) -> str:
    """Who asked, for the action's record and the log: the service role, and whose token."""
    return f"api:service_role:{principal.user_id or 'key'}"


class _Bulk:
    kind: BulkKind

    def __init__(self, actions: BulkActions):
        self._actions = actions

    def _post(self, req, resp, json: BulkActionRequest):
        service_only(req, "Jobs are retried and cancelled in bulk")
        filters = json.model_dump(include=set(job_filters.FILTER_NAMES))
        if json.dry_run:
            resp.media = {
                "action": {
                    "id": None,
                    "action": self.kind.value,
                    "status": "dry_run",
                    "filters": job_filters.to_json(filters),
                    "matched": self._actions.count(self.kind, filters),
                    "acted": 0,
                }
            }
            return
        action = self._actions.ask(self.kind, filters, requester(req.context.principal))
        resp.status = falcon.HTTP_202
        resp.location = f"/api/jobs/actions/{action.id}"
        resp.media = {"action": present_action(action)}


_ANSWERS = dict(
    HTTP_200=BulkActionAnswer,
    HTTP_202=BulkActionAnswer,
    HTTP_403=Error,
    **errors(body=True, write=True),
)


class BulkRetryResource(_Bulk):
    kind = BulkKind.RETRY

    @spec.validate(json=BulkActionRequest, resp=Response(**_ANSWERS), tags=["jobs"])
    def on_post(self, req, resp, json: BulkActionRequest):
        """Retry every failed job the filter matches (service role): 202 and the action, done
        by the worker in batches (follow ``Location`` for its progress); each job retried is
        recorded. ``dry_run: true``: 200 and only the count."""
        self._post(req, resp, json)


class BulkCancelResource(_Bulk):
    kind = BulkKind.CANCEL

    @spec.validate(json=BulkActionRequest, resp=Response(**_ANSWERS), tags=["jobs"])
    def on_post(self, req, resp, json: BulkActionRequest):
        """Cancel every waiting (pending or queued) job the filter matches (service role), as
        the retry does; a cancelled job is never sent."""
        self._post(req, resp, json)


class BulkActionResource:
    @spec.validate(
        resp=Response(HTTP_200=BulkActionAnswer, HTTP_403=Error, HTTP_404=Error, **errors()),
        tags=["jobs"],
    )
    def on_get(self, req, resp, action_id: UUID):
        """A bulk action's progress: ``running`` with ``acted`` of ``matched`` so far, then
        ``done`` (service role)."""
        service_only(req, "Bulk actions are seen")
        action = BulkAction.get_or_none(BulkAction.id == action_id)
        if action is None:
            raise not_found("bulk action", action_id)
        resp.media = {"action": present_action(action)}
