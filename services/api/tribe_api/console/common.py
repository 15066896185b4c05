"""What every console page shares: the :class:`Console` the pages work with, the
:class:`Page` base (the session a page needs, a posted form's CSRF check, rendering), and the
job filter of a page's query or form.

Nothing is reachable without a session: a page asked for without one redirects to the sign-in
page, a form posted without one (or with a CSRF token that is not the session's) is a 403 and
changes nothing. Every action an operator takes is logged: who, what, how many.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import falcon
import falcon.media
from pydantic import ValidationError

from tribe_api.auth import TokenVerifier
from tribe_api.bulk_actions import BulkActions
from tribe_api.console.session import COOKIE, ConsoleSessions, NoSession, Session
from tribe_api.pages import render_page
from tribe_api.previews import EmailLinks
from tribe_api.resources.health import HealthChecks
from tribe_api.schemas.jobs import JobFilter
from tribe_shared import job_filters
from tribe_shared.outbox import Outbox
from tribe_shared.settings import Settings

log = logging.getLogger("tribe_api.console")

_FORM = falcon.media.URLEncodedFormHandler()
#: Notices a redirect may ask a page to show (never text from the URL itself).
NOTICES = {
    "retried": "The job was queued again.",
    "cancelled": "The job was cancelled.",
    "lifted": "The suppression was lifted: email goes to the address again.",
    "signed-out": "You are signed out.",
    "replayed": "The dead letter's failed jobs were queued again, and the dead letter dropped.",
}


@dataclass
class Console:
    """What the pages work with, built once by :func:`tribe_api.app.create_app` for
    :func:`~tribe_api.console.routes.add_console`."""

    settings: Settings
    sessions: ConsoleSessions
    verifier: TokenVerifier
    checks: HealthChecks
    actions: BulkActions
    outbox: Outbox
    clock: Callable[[], datetime]
    #: The links a digest's preview shows, as its email would carry them.
    email_links: EmailLinks


def _when(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Page:
    auth_required = False  # the session cookie is the authority here, not a bearer token

    def __init__(self, console: Console):
        self.console = console

    # --- sessions and forms ---

    def session(self, req, resp) -> Session | None:
        """The operator's session; without one, a GET is redirected to sign in and a POST
        refused (and None returned after answering)."""
        try:
            return self.console.sessions.read(req.cookies.get(COOKIE), self.console.clock())
        except NoSession:
            if req.method in ("GET", "HEAD"):
                where = req.relative_uri if req.path != "/admin/sign-in" else "/admin"
                raise falcon.HTTPSeeOther("/admin/sign-in?" + urlencode({"next": where})) from None
            self.refuse(resp, "You are not signed in (or your session has ended).")
            return None

    def form(self, req, resp) -> tuple[Session, dict] | None:
        """A posted form and its session, its CSRF token checked; None after refusing."""
        session = self.session(req, resp)
        if session is None:
            return None
        form = read_form(req)
        if not self.console.sessions.csrf_ok(session, form.get("csrf")):
            log.warning("console: %s posted %s with a bad CSRF token", session.operator, req.path)
            self.refuse(resp, "This form is not one the console gave you (its CSRF token).")
            return None
        return session, form

    def refuse(self, resp, message: str) -> None:
        render_page(resp, "console/refused.html", falcon.HTTP_403, message=message, session=None)

    def render(self, resp, template: str, session: Session, status=falcon.HTTP_200, **context):
        render_page(
            resp,
            template,
            status,
            session=session,
            csrf=session.csrf_token,
            when=_when,
            grafana_url=self.console.settings.grafana_url,
            **context,
        )


def read_form(req) -> dict:
    if not req.content_length:
        return {}
    if not (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type", description="The console posts forms"
        )
    return _FORM.deserialize(req.bounded_stream, req.content_type, req.content_length)


def filters_of(params: dict) -> tuple[dict, str | None]:
    """The job filter of a page's query or form (empty fields ignored; a ``datetime-local``
    value taken as UTC), and the error that makes it unusable, if any."""
    given = {}
    for name in job_filters.FILTER_NAMES:
        value = params.get(name)
        if isinstance(value, list):
            value = value[0]
        if value is None or not str(value).strip():
            continue
        value = str(value).strip()
        if name in job_filters.RANGE_FILTERS:
            value = _as_utc_instant(value)
        given[name] = value
    try:
        parsed = JobFilter.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        return {}, f"{field}: {first['msg']}"
    return parsed.model_dump(exclude_none=True), None


_LOCAL_INSTANT = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?Z?")


def _as_utc_instant(value: str) -> str:
    """A ``datetime-local`` value or a short one (``2026-12-06T04:00``, with or without
    seconds or ``Z``) as the RFC 3339 instant in UTC it means; anything else as given."""
    short = _LOCAL_INSTANT.fullmatch(value)
    if short is None:
        return value
    day, minutes, seconds = short.groups()
    return f"{day}T{minutes}{seconds or ':00'}Z"


def query_of(filters: dict) -> str:
    return urlencode(job_filters.to_json(filters))
