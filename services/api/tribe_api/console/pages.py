"""The console's pages and forms (``/admin``): thin resources that read a session, call the
API's own services (the job list's filters, retry, cancel, bulk actions, suppressions) and
render a template.

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
from uuid import UUID

import falcon
import falcon.media
import redis
from peewee import JOIN
from pydantic import ValidationError

from tribe_api import jobs as job_service
from tribe_api.auth import InvalidToken, TokenVerifier
from tribe_api.bulk_actions import BulkActions
from tribe_api.console import reads
from tribe_api.console.session import (
    COOKIE,
    COOKIE_PATH,
    ConsoleSessions,
    NoSession,
    Session,
    key_fingerprint,
)
from tribe_api.pages import render_page
from tribe_api.previews import EmailLinks, preview_digest
from tribe_api.resources.health import HealthChecks
from tribe_api.resources.jobs import timeline as events_of
from tribe_api.schemas.jobs import JobFilter
from tribe_api.system_state import SCHEDULER_LATE_SECONDS, JobCounts, read_job_health
from tribe_shared import bulk, job_filters
from tribe_shared.contract import (
    CLAIMABLE_STATUSES,
    PERIODIC_ACTORS,
    DeliveryMethod,
    DeliveryOutcome,
    JobKind,
    JobStatus,
    NotificationType,
)
from tribe_shared.emails.digest import updates_in, window_start
from tribe_shared.models import (
    BulkAction,
    DeliveryLog,
    DigestSchedule,
    NotificationJob,
    Recipient,
    Suppression,
)
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import forget_dead_letter, read_dead_letters
from tribe_shared.settings import Settings

log = logging.getLogger("tribe_api.console")

_FORM = falcon.media.URLEncodedFormHandler()
#: The choices of the job list's select filters.
CHOICES = {
    "status": [s.value for s in JobStatus],
    "kind": [k.value for k in JobKind],
    "delivery_method": [m.value for m in DeliveryMethod],
    "notification_type": [t.value for t in NotificationType],
    "delivery_outcome": [o.value for o in DeliveryOutcome],
}
#: The job list's text filters, with their labels.
TEXT_FILTERS = {
    "to": "Address",
    "request_id": "Originating request (X-Request-ID)",
    "update_id": "Update (its fan-out)",
    "group_id": "Group",
    "recipient_id": "Recipient",
    "created_after": "Created after (UTC)",
    "created_before": "Created before (UTC)",
}
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
    """What the pages work with, built once by :func:`add_console`."""

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


class _Page:
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
        form = _read_form(req)
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
            notice=None,
            **context,
        )


def _read_form(req) -> dict:
    if not req.content_length:
        return {}
    if not (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type", description="The console posts forms"
        )
    return _FORM.deserialize(req.bounded_stream, req.content_type, req.content_length)


def _filters_of(params: dict) -> tuple[dict, str | None]:
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


def _query_of(filters: dict) -> str:
    return urlencode(job_filters.to_json(filters))


# --- sign-in and sign-out ------------------------------------------------------------------


class SignInPage(_Page):
    def on_get(self, req, resp):
        render_page(
            resp,
            "console/sign_in.html",
            session=None,
            next=_safe_next(req.get_param("next")),
            error=None,
            notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        form = _read_form(req)
        token = (form.get("token") or "").strip()
        name = (form.get("name") or "").strip()[:80]
        target = _safe_next(form.get("next"))
        if not name or not token:
            return self._again(resp, falcon.HTTP_400, "Give your name and the service-role key.")
        try:
            principal = self.console.verifier.verify(token)
        except InvalidToken as exc:
            log.warning("console: sign-in refused for %r: %s", name, exc)
            return self._again(resp, falcon.HTTP_401, f"This key was not accepted: {exc}")
        if not principal.is_service:
            log.warning("console: sign-in refused for %r: a user's token", name)
            return self._again(
                resp,
                falcon.HTTP_403,
                "This is a user's token, not an operator's: the console takes the project's "
                "service-role key.",
            )
        operator = f"{name} (key {key_fingerprint(token)})"
        now = self.console.clock()
        cookie = self.console.sessions.sign(operator, now)
        resp.set_cookie(
            COOKIE,
            cookie,
            max_age=int(self.console.sessions.lifetime.total_seconds()),
            path=COOKIE_PATH,
            secure=True,
            http_only=True,
            same_site="Strict",
        )
        log.info("console: %s signed in", operator, extra={"operator": operator})
        raise falcon.HTTPSeeOther(target)

    def _again(self, resp, status, error: str) -> None:
        render_page(
            resp, "console/sign_in.html", status, session=None, next="/admin", error=error,
            notice=None,
        )  # fmt: skip


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page only (never another site)."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin"


class SignOutForm(_Page):
    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, _ = posted
        resp.unset_cookie(COOKIE, path=COOKIE_PATH)
        log.info("console: %s signed out", session.operator, extra={"operator": session.operator})
        raise falcon.HTTPSeeOther("/admin/sign-in?notice=signed-out")


# --- the overview --------------------------------------------------------------------------


class OverviewPage(_Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        checks = self.console.checks
        now = self.console.clock()
        redis_health = checks.redis()
        state, warnings = checks.broker(redis_health)
        if not redis_health["configured"]:
            warnings = []
        try:
            health = read_job_health(now)
            chart = reads.per_minute(now)
        except Exception as exc:  # whatever the database raised, the jobs are unreadable
            log.warning("console: jobs unreadable: %s: %s", type(exc).__name__, exc)
            health, chart = JobCounts(), reads.MinuteCounts()
            warnings.insert(0, "Jobs unreadable (see the API's log)")
        else:
            warnings = checks.jobs(health) + warnings
        ticks = []
        for task in PERIODIC_ACTORS:
            at = state.last_runs.get(task) if state else None
            age = now.timestamp() - at if at else None
            ticks.append(
                {
                    "task": task.value,
                    "at": at,
                    "age": age,
                    "late": age is None or age > SCHEDULER_LATE_SECONDS,
                }
            )
        oldest = health.oldest_pending_since
        self.render(
            resp,
            "console/overview.html",
            session,
            redis=redis_health,
            state=state,
            ticks=ticks,
            warnings=warnings,
            oldest_pending=oldest,
            oldest_age=health.oldest_pending_age(now) if oldest else None,
            processed=health.processed_recently,
            chart=chart,
            now=now,
            actions=list(BulkAction.select().order_by(BulkAction.created_at.desc()).limit(5)),
        )


# --- jobs ----------------------------------------------------------------------------------


class JobsPage(_Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        filters, error = _filters_of(req.params)
        cursor = req.get_param("after")
        oldest_first = req.get_param("order") == "asc"
        page = None
        if error is None:
            try:
                page = reads.job_page(filters, cursor, descending=not oldest_first)
            except ValueError:
                error = "after: not a cursor of this list"
        self.render(
            resp,
            "console/jobs.html",
            session,
            falcon.HTTP_400 if error else falcon.HTTP_200,
            filters=job_filters.to_json(filters),
            choices=CHOICES,
            text_filters=TEXT_FILTERS,
            error=error,
            page=page,
            query=_query_of(filters),
            order="asc" if oldest_first else "desc",
        )


class JobPage(_Page):
    def on_get(self, req, resp, job_id: UUID):
        session = self.session(req, resp)
        job = _job(job_id)
        self._show(resp, session, job, NOTICES.get(req.get_param("notice") or ""))

    def _show(self, resp, session, job, notice=None, status=falcon.HTTP_200, error=None):
        logs = list(job.delivery_logs.order_by(DeliveryLog.attempt, DeliveryLog.created_at))
        events = events_of(job.id)
        self.render(
            resp,
            "console/job.html",
            session,
            status,
            job=job,
            recipient=job.recipient if job.recipient_id else None,
            timeline=_timeline(job, logs, events),
            retryable=job.status == JobStatus.FAILED and job.scrubbed_at is None,
            cancellable=job.status in CLAIMABLE_STATUSES,
            page_notice=notice,
            error=error,
        )


def _job(job_id: UUID) -> NotificationJob:
    job = (
        NotificationJob.select(NotificationJob, Recipient)
        .join(Recipient, JOIN.LEFT_OUTER, on=(NotificationJob.recipient == Recipient.id))
        .where(NotificationJob.id == job_id)
        .first()
    )
    if job is None:
        raise falcon.HTTPNotFound(title="Not found", description=f"No job {job_id}")
    return job


def _timeline(job: NotificationJob, logs: list, events: list[dict]) -> list[dict]:
    """What happened to a job, in time order: created, handed over, each attempt and its
    delivery log, the provider's events, and how it ended."""
    steps = [
        {"at": job.created_at, "what": "created", "detail": f"request {job.request_id or '—'}"}
    ]
    if job.scheduled_for and job.scheduled_for > job.created_at:
        steps.append({"at": job.scheduled_for, "what": "scheduled for", "detail": ""})
    if job.queued_at:
        steps.append({"at": job.queued_at, "what": "queued", "detail": "handed to the broker"})
    for entry in logs:
        detail = f"attempt {entry.attempt} via {entry.provider}"
        if entry.duration_ms is not None:
            detail += f", {entry.duration_ms} ms"
        if entry.error:
            detail += f": {entry.error}"
        steps.append({"at": entry.created_at, "what": entry.status, "detail": detail})
    for event in events:
        reason = event["detail"].get("reason") or event["detail"].get("response") or ""
        steps.append({"at": event["occurred_at"], "what": f"provider: {event['event']}",
                      "detail": reason})  # fmt: skip
    if job.processed_at:
        steps.append({"at": job.processed_at, "what": job.status,
                      "detail": job.failure_reason or ""})  # fmt: skip
    return sorted(steps, key=lambda step: step["at"])


class JobActionForm(_Page):
    """``POST /admin/jobs/{id}/retry`` and ``/cancel``: the API's own retry and cancel."""

    def __init__(self, console: Console, action: str):
        super().__init__(console)
        self._action = action

    def on_post(self, req, resp, job_id: UUID):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, _ = posted
        job = _job(job_id)
        now = self.console.clock()
        try:
            if self._action == "retry":
                job_service.retry_job(job, self.console.outbox, now)
            else:
                job_service.cancel_job(job, now)
        except falcon.HTTPConflict as exc:
            return JobPage(self.console)._show(
                resp, session, _job(job_id), status=falcon.HTTP_409, error=exc.description
            )
        log.info(
            "console: %s %s job %s",
            session.operator,
            "retried" if self._action == "retry" else "cancelled",
            job_id,
            extra={"operator": session.operator, "action": self._action, "jobs": 1},
        )
        notice = "retried" if self._action == "retry" else "cancelled"
        raise falcon.HTTPSeeOther(f"/admin/jobs/{job_id}?notice={notice}")


# --- bulk actions --------------------------------------------------------------------------


class BulkPage(_Page):
    """``GET /admin/bulk?action=retry&<filters>``: the count and a confirmation (changes
    nothing); ``POST /admin/bulk``: the action, done in the background."""

    def on_get(self, req, resp):
        session = self.session(req, resp)
        kind = req.get_param("action")
        if kind not in (bulk.BulkKind.RETRY, bulk.BulkKind.CANCEL):
            raise falcon.HTTPBadRequest(title="Bad request", description="action: retry or cancel")
        filters, error = _filters_of(req.params)
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
            query=_query_of(filters),
        )

    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        kind = form.get("action")
        filters, error = _filters_of(form)
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


class ActionPage(_Page):
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


# --- dead letters --------------------------------------------------------------------------


class DeadLettersPage(_Page):
    """The newest dead-lettered messages of each queue, with the jobs they carried; replaying
    one retries its failed jobs (the job row is the truth: the message itself is never
    re-sent), and drops it."""

    def on_get(self, req, resp):
        session = self.session(req, resp)
        client = self.console.checks.redis_client
        letters, error = [], None
        if client is None:
            error = "No Redis (development, in-memory broker): no dead letters are kept."
        else:
            try:
                letters = read_dead_letters(client, self.console.settings.redis_namespace)
            except redis.RedisError as exc:
                log.warning("console: dead letters unreadable: %s", exc)
                error = "Redis is unreachable: the dead letters cannot be read now."
        self.render(
            resp,
            "console/dead_letters.html",
            session,
            letters=letters,
            error=error,
            page_notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        location = form.get("location") or ""
        ids = [UUID(i) for i in (form.get("job_ids") or "").split(",") if i]
        now = self.console.clock()
        retried = 0
        for job in NotificationJob.select().where(
            NotificationJob.id.in_(ids), NotificationJob.status == JobStatus.FAILED
        ):
            try:
                job_service.retry_job(job, self.console.outbox, now)
                retried += 1
            except falcon.HTTPConflict:
                continue
        forget_dead_letter(self.console.outbox.broker, location or None)
        log.info(
            "console: %s replayed dead letter %s: %d job(s) retried",
            session.operator,
            location,
            retried,
            extra={"operator": session.operator, "action": "replay", "jobs": retried},
        )
        raise falcon.HTTPSeeOther("/admin/dead-letters?notice=replayed")


# --- digests and suppressions --------------------------------------------------------------


class DigestsPage(_Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        self.render(resp, "console/digests.html", session, view=reads.digests(self.console.clock()))


class DigestPreviewPage(_Page):
    """What a schedule's next digest would hold if it were built now: its updates (the same
    selection the worker's build makes, :func:`tribe_shared.emails.digest.updates_in`) and the
    email itself, or why none would go (:func:`tribe_api.previews.preview_digest`); nothing is
    sent or changed."""

    def on_get(self, req, resp, schedule_id: UUID):
        session = self.session(req, resp)
        schedule = (
            DigestSchedule.select(DigestSchedule, Recipient)
            .join(Recipient, on=(DigestSchedule.recipient == Recipient.id))
            .where(DigestSchedule.id == schedule_id)
            .first()
        )
        if schedule is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"No schedule {schedule_id}")
        now = self.console.clock()
        start = window_start(schedule)
        shown, total = updates_in(schedule, start, now) if now > start else ([], 0)
        self.render(
            resp,
            "console/digest_preview.html",
            session,
            schedule=schedule,
            start=start,
            now=now,
            shown=shown,
            total=total,
            preview=preview_digest(schedule, self.console.email_links, now),
        )


class SuppressionsPage(_Page):
    def on_get(self, req, resp):
        session = self.session(req, resp)
        email = (req.get_param("email") or "").strip()
        self.render(
            resp,
            "console/suppressions.html",
            session,
            rows=reads.suppressions(email or None),
            email=email,
            page_notice=NOTICES.get(req.get_param("notice") or ""),
        )

    def on_post(self, req, resp):
        """Lift a suppression (as ``DELETE /api/suppressions/{email}`` does)."""
        posted = self.form(req, resp)
        if posted is None:
            return
        session, form = posted
        address = (form.get("email") or "").strip().lower()
        lifted = (
            Suppression.delete()
            .where(Suppression.email == address, Suppression.suppressed_at.is_null(False))
            .execute()
        )
        log.info(
            "console: %s lifted the suppression of %s (%d)",
            session.operator,
            address,
            lifted,
            extra={"operator": session.operator, "action": "lift", "jobs": 0},
        )
        raise falcon.HTTPSeeOther("/admin/suppressions?notice=lifted")


def add_console(app: falcon.App, console: Console, route) -> None:
    """The console's routes on ``app`` (``route``: the app's route adder)."""
    route(app, "/admin", OverviewPage(console))
    route(app, "/admin/sign-in", SignInPage(console))
    route(app, "/admin/sign-out", SignOutForm(console))
    route(app, "/admin/jobs", JobsPage(console))
    route(app, "/admin/jobs/{job_id:uuid}", JobPage(console))
    route(app, "/admin/jobs/{job_id:uuid}/retry", JobActionForm(console, "retry"))
    route(app, "/admin/jobs/{job_id:uuid}/cancel", JobActionForm(console, "cancel"))
    route(app, "/admin/bulk", BulkPage(console))
    route(app, "/admin/actions/{action_id:uuid}", ActionPage(console))
    route(app, "/admin/dead-letters", DeadLettersPage(console))
    route(app, "/admin/digests", DigestsPage(console))
    route(app, "/admin/digests/{schedule_id:uuid}", DigestPreviewPage(console))
    route(app, "/admin/suppressions", SuppressionsPage(console))
