"""Request middleware: the body size limit, the per-request database connection, the access
log."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from functools import cache

import falcon

from tribe_shared import tracing
from tribe_shared.db import database

#: Largest request body accepted (1 MiB).
MAX_BODY_BYTES = 1024 * 1024
#: The longest ``X-Request-ID`` taken from a client (the jobs' column holds 128).
REQUEST_ID_MAX = 128
#: What a client's request id may hold: anything else gets a generated one instead.
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:/+=@-]{{1,{REQUEST_ID_MAX}}}")

#: The route of a request no route matched (a 404), in logs and metrics.
UNMATCHED_ROUTE = "unmatched"
_CONVERTER = re.compile(r"{(\w+):[^}]*}")

access_log = logging.getLogger("tribe_api.access")


def route_of(req) -> str:
    """The route template the request matched, as documented (``/api/jobs/{job_id}``, without
    the ``:uuid`` converter), or :data:`UNMATCHED_ROUTE`. Never the raw path: its ids would make
    a metric series per job."""
    template = req.uri_template
    return _without_converters(template) if template else UNMATCHED_ROUTE


@cache  # one entry per route template: a handful
def _without_converters(template: str) -> str:
    return _CONVERTER.sub(r"{\1}", template)


class RequestId:
    """Give every request an id: the client's ``X-Request-ID`` when it is a sensible one (up to
    128 letters, digits and ``._:/+=@-``), else a new UUID. It is echoed in the response's
    ``X-Request-ID``, logged with the request, and stored with the jobs the request creates
    (``req.context.request_id``), whose worker log lines carry it."""

    def __init__(self, new_id=lambda: uuid.uuid4().hex):
        self._new_id = new_id

    def process_request(self, req, resp):
        given = (req.get_header("X-Request-ID") or "").strip()
        req.context.request_id = given if _REQUEST_ID.fullmatch(given) else self._new_id()
        resp.set_header("X-Request-ID", req.context.request_id)


class BodyLimit:
    """Refuse bodies over :data:`MAX_BODY_BYTES`.

    A body with a Content-Length is refused before a byte of it is read. A chunked body has
    none: it is read up to one byte past the limit, refused if it goes on, else kept in memory
    and given the Content-Length it turned out to have (Falcon reads a body by its length). A
    chunked body the server cannot decode (gunicorn raises its parse error from the read) is a
    400, not a 500.
    """

    def __init__(self, limit: int = MAX_BODY_BYTES):
        self._limit = limit

    def process_request(self, req, resp):
        if req.content_length is not None:
            if req.content_length > self._limit:
                raise self._too_large()
            return
        if "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
            return
        try:
            body = req.env["wsgi.input"].read(self._limit + 1)
        except Exception as exc:  # the WSGI server's own error: its type is the server's
            raise falcon.HTTPBadRequest(
                title="Malformed body", description="The chunked body is not valid chunked coding"
            ) from exc
        if len(body) > self._limit:
            raise self._too_large()
        req.env["wsgi.input"] = req.stream = io.BytesIO(body)
        req.env["CONTENT_LENGTH"] = str(len(body))

    def _too_large(self) -> falcon.HTTPContentTooLarge:
        return falcon.HTTPContentTooLarge(
            title="Request body too large",
            description=f"The body may be at most {self._limit} bytes",
        )


class RequireContentType:
    """A request with a body must say what the body is: without ``Content-Type`` it is a 415,
    not parsed as JSON on a guess."""

    def process_request(self, req, resp):
        has_body = (req.content_length or 0) > 0 or "chunked" in (
            req.get_header("Transfer-Encoding") or ""
        ).lower()
        if has_body and not req.content_type:
            raise falcon.HTTPUnsupportedMediaType(
                title="Unsupported media type",
                description="The body needs a Content-Type: application/json",
            )


class DatabaseConnection:
    """Hold one pooled connection for the life of a request.

    Resources that set ``uses_database = False``, and ``skip_paths`` (the API docs, whose
    resources are not ours), get none, so they keep answering while the database is down.
    """

    def __init__(self, *, skip_paths: tuple[str, ...] = ()):
        self._skip_paths = skip_paths

    def process_resource(self, req, resp, resource, params):
        if (
            resource is not None
            and getattr(resource, "uses_database", True)
            and req.path not in self._skip_paths
        ):
            database.connect(reuse_if_open=True)

    def process_response(self, req, resp, resource, req_succeeded):
        # Unbound (an app built only to serve its document) means no connection to close.
        if database.obj is not None and not database.is_closed():
            database.close()


class AccessLog:
    """One log record per request: method, route template, status, duration, request id.

    Never the headers (the bearer token) nor the body. Rendered as a JSON line under gunicorn
    (:mod:`tribe_shared.logs`); a disabled INFO level costs one check.
    """

    def __init__(self, logger: logging.Logger = access_log):
        self._log = logger

    def process_request(self, req, resp):
        req.context.access_started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "access_started", None)
        if started is None or not self._log.isEnabledFor(logging.INFO):
            return
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        route = route_of(req)
        fields = {
            "method": req.method,
            "route": route,
            "status": resp.status_code,
            "duration_ms": duration_ms,
        }
        request_id = getattr(req.context, "request_id", None)
        if request_id:
            fields["request_id"] = request_id
        self._log.info(
            "%s %s %s %.1f ms", req.method, route, resp.status_code, duration_ms, extra=fields
        )


class Tracing:
    """A server span per request (only added when tracing is on): continued from the client's
    ``traceparent`` when it sent one; the route, status and request id as attributes. The jobs
    the request hands over travel in its trace (:mod:`tribe_shared.tracing`)."""

    def process_request(self, req, resp):
        headers = {name.lower(): value for name, value in req.headers.items()}
        started = tracing.span(
            f"{req.method} request",
            kind="server",
            parent=headers,
            **{"http.request.method": req.method, "tribe.request_id": req.context.request_id},
        )
        req.context.trace_span = started
        current = started.__enter__()
        req.context.trace_current = current

    def process_resource(self, req, resp, resource, params):
        current = getattr(req.context, "trace_current", None)
        if current is not None and req.uri_template:
            current.update_name(f"{req.method} {route_of(req)}")
            current.set_attribute("http.route", route_of(req))

    def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "trace_span", None)
        if started is None:
            return
        req.context.trace_current.set_attribute("http.response.status_code", resp.status_code)
        started.__exit__(None, None, None)
