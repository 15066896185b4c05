"""Every error is JSON: ``title``, ``description``, a stable machine-readable ``code`` (the
:class:`Code` values) and, for bad input, ``errors`` naming each field with its ``kind``.

Messages say what is wrong in the request's terms, never the implementation's (no regular
expression, library prefix or model name). Nothing escapes as a traceback: an unexpected
exception is logged and answered with a plain 500, and an unreachable database is a 503 with
``Retry-After``.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum

import falcon

from tribe_shared.db import DATABASE_DOWN_ERRORS, is_unreachable

log = logging.getLogger(__name__)

#: Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5


class Code(StrEnum):
    """The ``code`` of an error body: what a program can act on."""

    BAD_REQUEST = "bad_request"  # malformed: not JSON, a bad header
    VALIDATION_FAILED = "validation_failed"  # well-formed, but fields are wrong (see ``errors``)
    UNAUTHORIZED = "unauthorized"  # no valid bearer token
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"  # the object's state does not allow it (cancel a sent job)
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NO_OWNING_USER = "no_owning_user"  # the service role's key acts for no user
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # a key reused with another request
    RATE_LIMITED = "rate_limited"  # too many changes a minute
    QUOTA_EXCEEDED = "quota_exceeded"  # too many emails a day
    SERVICE_ROLE_REQUIRED = "service_role_required"  # an operator's route, a user's token
    MISSING_SIGNATURE = "missing_signature"  # a provider's webhook: unsigned
    INVALID_SIGNATURE = "invalid_signature"  # ... signed by someone else, or altered
    STALE_BATCH = "stale_batch"  # ... signed too long ago (a replay)
    MALFORMED_BATCH = "malformed_batch"  # ... signed, but not a batch of events
    WEBHOOK_NOT_CONFIGURED = "webhook_not_configured"  # no key to verify it with
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"


#: The code of an error raised without one, by its status.
CODES_BY_STATUS = {
    400: Code.BAD_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    409: Code.CONFLICT,
    413: Code.PAYLOAD_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    422: Code.VALIDATION_FAILED,
    429: Code.RATE_LIMITED,
    500: Code.INTERNAL_ERROR,
    503: Code.SERVICE_UNAVAILABLE,
}


class Kind(StrEnum):
    """What is wrong with one field (``errors[].kind``)."""

    MISSING = "missing"
    UNKNOWN = "unknown_field"
    TYPE = "invalid_type"
    FORMAT = "invalid_format"
    CHOICE = "invalid_choice"
    LENGTH = "invalid_length"
    RANGE = "out_of_range"
    CONFLICT = "conflict"  # fine alone, but not with another field or object


class ValidationFailed(falcon.HTTPError):
    """A 400 (malformed) or 422 (well-formed but unacceptable) naming each offending field."""

    def __init__(self, errors: list[dict[str, str]], *, status: str = falcon.HTTP_400):
        fields = ", ".join(e["field"] for e in errors)
        super().__init__(
            status,
            title="Invalid request",
            description=f"Invalid fields: {fields}",
            code=Code.VALIDATION_FAILED,
        )
        self.errors = errors

    def to_dict(self, obj_type=dict):
        body = super().to_dict(obj_type)
        body["errors"] = self.errors
        return body


def invalid(field: str, message: str, kind: Kind = Kind.FORMAT) -> ValidationFailed:
    """A 400 naming one field."""
    return ValidationFailed([{"field": field, "kind": kind, "message": message}])


def unprocessable(field: str, message: str, kind: Kind = Kind.CONFLICT) -> ValidationFailed:
    """A 422: ``field`` is well-formed but does not fit (another object, the state of one)."""
    error = {"field": field, "kind": kind, "message": message}
    return ValidationFailed([error], status=falcon.HTTP_422)


#: pydantic's error types, by the kind we report.
_KINDS = {
    "missing": Kind.MISSING,
    "extra_forbidden": Kind.UNKNOWN,
    "literal_error": Kind.CHOICE,
    "enum": Kind.CHOICE,
    "string_too_short": Kind.LENGTH,
    "string_too_long": Kind.LENGTH,
    "too_short": Kind.LENGTH,
    "too_long": Kind.LENGTH,
    "greater_than": Kind.RANGE,
    "greater_than_equal": Kind.RANGE,
    "less_than": Kind.RANGE,
    "less_than_equal": Kind.RANGE,
    "out_of_range": Kind.RANGE,  # ours: an instant past what the databases hold
}
#: What pydantic says that names its own internals, and what we say instead.
_REWORDED = (
    (re.compile(r"^String should match pattern .*$"), "is not in the expected form"),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^Assertion failed, "), ""),
    (re.compile(r" or instance of \w+"), ""),
)


def _kind(error_type: str) -> Kind:
    if error_type in _KINDS:
        return _KINDS[error_type]
    if error_type.endswith("_type") or error_type in ("model_attributes_type", "dict_type"):
        return Kind.TYPE
    return Kind.FORMAT


def _message(error: dict) -> str:
    if error["type"] == "extra_forbidden":
        return "Unknown field"
    if error["type"] == "missing":
        return "Field required"
    message = error["msg"]
    for pattern, replacement in _REWORDED:
        message = pattern.sub(replacement, message)
    return message[:1].upper() + message[1:]


def field_errors(pydantic_errors, prefix: tuple = ()) -> list[dict[str, str]]:
    """Turn pydantic's error list into ``[{"field": "emails[3].to", "kind", "message"}]``."""
    errors = []
    for err in pydantic_errors:
        field = ""
        for part in (*prefix, *err["loc"]):
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else part)
        errors.append(
            {"field": field or "body", "kind": _kind(err["type"]), "message": _message(err)}
        )
    return errors


def serialize_error(req, resp, exc: falcon.HTTPError) -> None:
    """Always JSON, whatever the client accepts, with a code (by status when none was given)."""
    resp.content_type = falcon.MEDIA_JSON
    body = exc.to_dict()
    body.setdefault("description", exc.title)
    body.setdefault("code", CODES_BY_STATUS.get(exc.status_code, Code.BAD_REQUEST))
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


def handle_no_route(req, resp, exc, params):
    """A path no route matches (a malformed id included) is the same JSON 404 as a missing
    object's."""
    raise falcon.HTTPNotFound(
        title="Not found", description=f"No resource at {req.path}", code=Code.NOT_FOUND
    )


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(DATABASE_DOWN_ERRORS, handle_database_down)
    app.add_error_handler(falcon.HTTPRouteNotFound, handle_no_route)
