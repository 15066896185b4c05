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


spec = SpecTree(
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
