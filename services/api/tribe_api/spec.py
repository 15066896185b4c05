"""The OpenAPI document (spectree), served at ``/api/openapi.json``.

Resources declare their bodies with :data:`spec`'s ``validate`` decorator; a request that does not
match is refused with our 400 shape before the resource runs. The document holds the routes so
declared (spectree's strict mode): the docs page at ``/api/docs`` and its files
(:mod:`tribe_api.resources.docs`, Swagger UI served by the API) are not operations of the API.
"""

from __future__ import annotations

import logging

import falcon
from spectree import SpecTree

from tribe_api.errors import Code, ValidationFailed, field_errors
from tribe_api.idempotency import (
    HEADER,
    KEY_LIFETIME,
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    REPLAYED_HEADER,
)
from tribe_api.schemas.errors import Error

DOCS_PATH = "api"
#: Served without a token, and without a database connection (``/metrics`` must not be exposed
#: to the public internet: see the README).
PUBLIC_PATHS = ("/api/openapi.json", "/api/docs", "/metrics")


log = logging.getLogger(__name__)


def _reject_invalid(req, resp, validation_error, instance, model_adapter) -> None:
    if validation_error is not None:
        raise ValidationFailed(field_errors(validation_error.errors()))


def _hide_invalid_answer(req, resp, validation_error, instance, *_) -> None:
    """An answer that does not match its documented model is our bug: logged in full, and
    answered as a plain 500 that shows none of it."""
    if validation_error is None:
        return
    log.error("%s %s answered off its model: %s", req.method, req.path, validation_error)
    resp.status = falcon.HTTP_500
    resp.media = {
        "title": "Internal server error",
        "description": "Something went wrong on our side",
        "code": Code.INTERNAL_ERROR,
    }


#: The ``Idempotency-Key`` header, as documented on every route whose resource is
#: ``idempotent`` (:mod:`tribe_api.idempotency`).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        f"Makes a retry safe: sent again with the same key and the same body within "
        f"{int(KEY_LIFETIME.total_seconds() // 3600)} hours, the request gets the first 2xx "
        f"answer again (same status, body and job ids; no new rows), marked "
        f"`{REPLAYED_HEADER}: true`. The same key with another body is a 422 "
        "`idempotency_conflict`; a second request with the key while the first is running "
        "waits for it and gets its answer. Keys are per caller. A 4xx or 5xx answer is not "
        f"kept: try again with the same key. 1 to {KEY_MAX_LENGTH} printable ASCII characters "
        "(a UUID is a good key); anything else is a 400."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_MAX_LENGTH,
        "pattern": KEY_PATTERN,
    },
}


class _TribeSpec(SpecTree):
    """spectree, plus the ``Idempotency-Key`` header on the operations that honour it: a
    header spectree would otherwise validate on every request (the middleware checks it,
    and only when it is sent)."""

    def _generate_spec(self) -> dict:
        document = super()._generate_spec()
        for route in self.backend.find_routes():
            if not getattr(route.resource, "idempotent", False):
                continue
            path, _ = self.backend.parse_path(route, {})
            operation = document["paths"].get(path, {}).get("post")
            if operation is not None:
                operation["parameters"].append(dict(IDEMPOTENCY_KEY_PARAMETER))
        return document


spec = _TribeSpec(
    "falcon",
    title="Tribe Jobs API",
    description=(
        "Accepts notification work in milliseconds and stores it as durable jobs. Every "
        "/api route except health and these docs needs `Authorization: Bearer <JWT>`."
    ),
    version="0.1.0",
    path=DOCS_PATH,
    # No page of spectree's: its Swagger UI page loads the UI from a CDN.
    page_templates={},
    mode="strict",
    validation_error_status=400,
    validation_error_model=Error,
    before=_reject_invalid,
    after=_hide_invalid_answer,
    security_schemes=[
        {"name": "bearerAuth", "data": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    ],
    security={"bearerAuth": []},
)


def errors(*, body: bool = False, write: bool = False) -> dict[str, type[Error]]:
    """The error responses every protected operation of its kind can give, named once.

    Any request: 400 (bad parameters), 401 (no valid token), 413 (a body over 1 MiB, whatever
    the method: :class:`~tribe_api.middleware.BodyLimit`), 503 (database unreachable). With a
    body: 415 (not JSON, or none). A write: 429 (the per-user limit,
    :mod:`tribe_api.throttle`). Add what the operation itself refuses (404, 409, 422).
    """
    codes = {"HTTP_400": Error, "HTTP_401": Error, "HTTP_413": Error, "HTTP_503": Error}
    if body:
        codes["HTTP_415"] = Error
    if write:
        codes["HTTP_429"] = Error
    return codes
