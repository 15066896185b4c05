"""``/api/suppressions``: the addresses that get no more email, seen and lifted by the service
role."""

from __future__ import annotations

import falcon
from spectree import Response

from tribe_api.errors import Code
from tribe_api.schemas.errors import Error
from tribe_api.schemas.events import SuppressionList, SuppressionQuery
from tribe_api.spec import errors, spec
from tribe_shared.models import Suppression


def _service_only(req) -> None:
    if not req.context.principal.is_service:
        raise falcon.HTTPForbidden(
            title="Forbidden",
            description="Suppressions are seen and lifted with the service role",
            code=Code.SERVICE_ROLE_REQUIRED,
        )


def present_suppression(row: Suppression) -> dict:
    return {
        "email": row.email,
        "reason": row.reason,
        "detail": row.detail,
        "source": row.source,
        "suppressed_at": row.suppressed_at,
    }


class SuppressionsResource:
    @spec.validate(
        query=SuppressionQuery,
        resp=Response(HTTP_200=SuppressionList, HTTP_403=Error, **errors()),
        tags=["suppressions"],
    )
    def on_get(self, req, resp, query: SuppressionQuery):
        """Suppressed addresses, newest first, with why and since when (service role)."""
        _service_only(req)
        rows = Suppression.select().where(Suppression.suppressed_at.is_null(False))
        if query.reason is not None:
            rows = rows.where(Suppression.reason == query.reason)
        if query.email is not None:
            rows = rows.where(Suppression.email == query.email.strip().lower())
        total = rows.count()
        page = rows.order_by(Suppression.suppressed_at.desc(), Suppression.email)
        resp.media = {
            "suppressions": [
                present_suppression(r) for r in page.limit(query.limit).offset(query.offset)
            ],
            "total": total,
        }


class SuppressionResource:
    @spec.validate(
        resp=Response(HTTP_200=None, HTTP_403=Error, HTTP_404=Error, **errors(write=True)),
        tags=["suppressions"],
    )
    def on_delete(self, req, resp, email: str):
        """Lift an address's suppression (and forget its counted blocks): email goes to it
        again (service role)."""
        _service_only(req)
        address = email.strip().lower()
        lifted = (
            Suppression.delete()
            .where(Suppression.email == address, Suppression.suppressed_at.is_null(False))
            .execute()
        )
        if not lifted:
            raise falcon.HTTPNotFound(
                title="Not found", description=f"{address} is not suppressed", code=Code.NOT_FOUND
            )
        resp.media = {"lifted": True, "email": address}
