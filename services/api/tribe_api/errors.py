"""Every error is JSON with ``title`` and ``description`` (and ``errors`` naming each bad field).

Nothing escapes as a traceback: an unexpected exception is logged and answered with a plain 500,
and an unreachable database is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging

import falcon

from tribe_shared.db import DATABASE_DOWN_ERRORS, is_unreachable

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5


class ValidationFailed(falcon.HTTPError):
    """A 400 (malformed) or 422 (well-formed but unacceptable) naming each offending field."""

    def __init__(self, errors: list[dict[str, str]], *, status: str = falcon.HTTP_400):
        fields = ", ".join(e["field"] for e in errors)
        super().__init__(status, title="Invalid request", description=f"Invalid fields: {fields}")
        self.errors = errors

    def to_dict(self, obj_type=dict):
        body = super().to_dict(obj_type)
        body["errors"] = self.errors
        return body


def unprocessable(field: str, message: str) -> ValidationFailed:
    """A 422: ``field`` is well-formed but does not fit (another object, the state of one)."""
    return ValidationFailed([{"field": field, "message": message}], status=falcon.HTTP_422)


def field_errors(pydantic_errors, prefix: tuple = ()) -> list[dict[str, str]]:
    """Turn pydantic's error list into ``[{"field": "emails[3].to", "message": ...}]``."""
    errors = []
    for err in pydantic_errors:
        field = ""
        for part in (*prefix, *err["loc"]):
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else part)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "Unknown field"
        errors.append({"field": field or "body", "message": message})
    return errors


def serialize_error(req, resp, exc: falcon.HTTPError) -> None:
    """Always JSON, whatever the client accepts."""
    resp.content_type = falcon.MEDIA_JSON
    body = exc.to_dict()
    body.setdefault("description", exc.title)
    resp.media = body


def handle_database_down(req, resp, exc, params):
    if not is_unreachable(exc):
        handle_unexpected(req, resp, exc, params)
    log.error("database unreachable: %s", exc)
    raise falcon.HTTPServiceUnavailable(
        title="Service unavailable",
        description="The database is unreachable; try again shortly",
        retry_after=DATABASE_RETRY_AFTER,
    )


def handle_unexpected(req, resp, exc, params):
    """Falcon's own handler still serves ``HTTPError``s: it is the more specific one."""
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(
        title="Internal server error", description="Something went wrong on our side"
    )


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(DATABASE_DOWN_ERRORS, handle_database_down)
