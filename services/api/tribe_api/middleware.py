"""Request middleware: the body size limit and the per-request database connection."""

from __future__ import annotations

import io

import falcon

from tribe_shared.db import database

#: Largest request body accepted (1 MiB).
MAX_BODY_BYTES = 1024 * 1024


class BodyLimit:
    """Refuse bodies over :data:`MAX_BODY_BYTES`.

    A body with a Content-Length is refused before a byte of it is read. A chunked body has
    none: it is read up to one byte past the limit, refused if it goes on, else kept in memory
    and given the Content-Length it turned out to have (Falcon reads a body by its length).
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
        body = req.env["wsgi.input"].read(self._limit + 1)
        if len(body) > self._limit:
            raise self._too_large()
        req.env["wsgi.input"] = req.stream = io.BytesIO(body)
        req.env["CONTENT_LENGTH"] = str(len(body))

    def _too_large(self) -> falcon.HTTPContentTooLarge:
        return falcon.HTTPContentTooLarge(
            title="Request body too large",
            description=f"The body may be at most {self._limit} bytes",
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
        if not database.is_closed():
            database.close()
