"""The API application factory: settings and collaborators in, a Falcon WSGI app out."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import dramatiq
import falcon
import falcon.media
import redis

from tribe_api import errors
from tribe_api.auth import AuthMiddleware, TokenVerifier
from tribe_api.bulk_actions import BulkActions
from tribe_api.console.common import Console
from tribe_api.console.routes import add_console
from tribe_api.console.session import ConsoleSessions
from tribe_api.idempotency import Idempotency
from tribe_api.intake import EmailIntake, NotificationIntake
from tribe_api.metrics import build_metrics
from tribe_api.middleware import (
    AccessLog,
    BodyLimit,
    DatabaseConnection,
    RequestId,
    RequireContentType,
    Tracing,
)
from tribe_api.previews import EmailLinks
from tribe_api.resources.bulk_actions import (
    BulkActionResource,
    BulkCancelResource,
    BulkRetryResource,
)
from tribe_api.resources.digests import DigestScheduleResource, DigestSchedulesResource
from tribe_api.resources.docs import DOCS_PATH, DocsAssetResource, DocsPageResource
from tribe_api.resources.family import (
    GroupResource,
    GroupsResource,
    RecipientResource,
    RecipientsResource,
    UpdatesResource,
)
from tribe_api.resources.health import HealthChecks, HealthResource, RedisHealthResource
from tribe_api.resources.jobs import JobResource, JobRetryResource, JobsResource
from tribe_api.resources.notifications import (
    NotificationsResource,
    SendBulkEmailResource,
    SendEmailResource,
)
from tribe_api.resources.previews import DigestPreviewResource, TemplatePreviewResource
from tribe_api.resources.probes import LiveResource, ReadyResource
from tribe_api.resources.suppressions import SuppressionResource, SuppressionsResource
from tribe_api.resources.unsubscribe import UnsubscribeResource, UnsubscribeUndoResource
from tribe_api.resources.webhooks import (
    EmailEventMetrics,
    SendGridWebhookResource,
    SmsEventMetrics,
    TwilioWebhookResource,
)
from tribe_api.spec import PUBLIC_PATHS, spec
from tribe_api.throttle import EmailQuota, WriteThrottle
from tribe_api.twilio_events import TwilioSignature
from tribe_api.updates import UpdatePoster
from tribe_api.users import RecordCallers
from tribe_api.webhook_signature import EventWebhookVerifier, load_public_key
from tribe_shared import tracing
from tribe_shared.emails.unsubscribe_links import UnsubscribeLinks
from tribe_shared.models import utcnow
from tribe_shared.outbox import Outbox
from tribe_shared.settings import Settings
from tribe_shared.unsubscribe import UNSUBSCRIBE_PATH, UnsubscribeTokens

log = logging.getLogger(__name__)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text}")
    return number


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _loads(text: str):
    """Strict JSON: NaN, Infinity and numbers that overflow to them are malformed, as RFC 8259
    says (the databases cannot store them either); so is nesting too deep to parse."""
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def create_app(
    settings: Settings,
    *,
    broker: dramatiq.Broker | None = None,
    redis_client: redis.Redis | None = None,
    clock: Callable[[], datetime] = utcnow,
    token_verifier: TokenVerifier | None = None,
) -> falcon.App:
    """Build the API. ``broker`` None means jobs stay ``pending`` until a relay hands them over.

    ``redis_client`` is the Redis the workers share (the circuit breaker, heartbeats, queues),
    read by the health checks and ``/metrics``, and where the per-user write limit counts; None
    (development) leaves the limit off. ``token_verifier`` checks bearer tokens (default: as the
    settings say). The database must already be bound (:func:`tribe_shared.db.bind`).
    """
    checks = HealthChecks(settings, redis_client, clock)
    request_metrics, metrics_resource = build_metrics(
        namespace=settings.redis_namespace, redis_client=checks.redis_client, clock=clock
    )
    verifier = token_verifier or TokenVerifier.from_settings(settings)
    app = falcon.App(
        middleware=[
            # First: they see every request, and their process_response runs last.
            request_metrics,
            *_middleware(settings, verifier, redis_client, clock),
        ]
    )
    _speak_json(app)
    errors.install(app)
    outbox = Outbox(broker)
    _route(app, "/metrics", metrics_resource)
    _route(app, "/api/health", HealthResource(checks))
    _route(app, "/api/health/redis", RedisHealthResource(checks))
    # Orchestrators' probes: liveness never touches the database; readiness does.
    _route(app, "/api/health/live", LiveResource())
    _route(app, "/api/health/ready", ReadyResource())
    _add_routes(app, outbox, clock, _email_quota(settings, redis_client, clock))
    _add_delivery_routes(app, settings, EmailEventMetrics(metrics_resource.registry), clock)
    sessions = ConsoleSessions(
        settings.jwt_secret, timedelta(minutes=settings.console_session_minutes)
    )
    console = Console(
        settings,
        sessions,
        verifier,
        checks,
        BulkActions(outbox, clock),
        outbox,
        clock,
        email_links(settings),
    )
    add_console(app, console, _route)
    _add_preview_routes(app, settings, clock)
    _add_twilio_routes(app, settings, SmsEventMetrics(metrics_resource.registry), clock)
    _route(app, DOCS_PATH, DocsPageResource())
    _route(app, DOCS_PATH + "/{name}", DocsAssetResource())
    spec.register(app)
    return app


def _add_delivery_routes(app: falcon.App, settings: Settings, metrics, clock) -> None:
    """After the send (issue #14): SendGrid's signed event webhook and the suppression list,
    and the unsubscribe links' routes (public: the signed token is the authority).

    Without ``SENDGRID_WEBHOOK_PUBLIC_KEY`` (never in production, where the settings require
    it) the webhook answers 503: no batch can be verified.
    """
    key = settings.sendgrid_webhook_public_key
    verifier = EventWebhookVerifier(load_public_key(key)) if key else None
    _route(app, "/api/webhooks/sendgrid", SendGridWebhookResource(verifier, metrics, clock))
    _route(app, "/api/suppressions", SuppressionsResource())
    _route(app, "/api/suppressions/{email}", SuppressionResource())
    tokens = UnsubscribeTokens(settings.unsubscribe_secret)
    page = UNSUBSCRIBE_PATH
    _route(app, page, UnsubscribeResource(tokens, clock))
    _route(app, page + "/undo", UnsubscribeUndoResource(tokens, clock))


def email_links(settings: Settings) -> EmailLinks:
    """The links an update or digest email carries, as the worker builds them."""
    unsubscribe = None
    if settings.api_public_url is not None:
        tokens = UnsubscribeTokens(settings.unsubscribe_secret)
        unsubscribe = UnsubscribeLinks(tokens, settings.api_public_url, settings.unsubscribe_mailto)
    return EmailLinks(settings.public_base_url, unsubscribe)


def _add_preview_routes(app: falcon.App, settings: Settings, clock) -> None:
    """Previews (issue #18): an email type with given data, a schedule's next digest (with the
    links its email would carry)."""
    links = email_links(settings)
    _route(app, "/api/templates/{email_type}/preview", TemplatePreviewResource())
    _route(
        app,
        "/api/digest-schedules/{schedule_id:uuid}/preview",
        DigestPreviewResource(links, clock),
    )


def _add_twilio_routes(app: falcon.App, settings: Settings, metrics, clock) -> None:
    """Twilio's webhook (issue #18): status callbacks and inbound STOP/START, verified with
    ``TWILIO_AUTH_TOKEN`` over the URL under ``API_PUBLIC_URL``; without a token, 503."""
    token = settings.twilio_auth_token
    signature = TwilioSignature(token, settings.api_public_url) if token else None
    _route(app, "/api/webhooks/twilio", TwilioWebhookResource(signature, metrics, clock))


def _route(app: falcon.App, path: str, resource) -> None:
    """Add a route; one with ``GET`` answers ``HEAD`` too (the same answer, which Falcon sends
    without its body)."""
    if hasattr(resource, "on_get") and not hasattr(resource, "on_head"):
        resource.on_head = resource.on_get
    app.add_route(path, resource)


def _middleware(settings: Settings, verifier: TokenVerifier, redis_client, clock) -> list:
    """What every request passes, in order: CORS (when origins are configured), its log line,
    the body limit, a database connection, authentication, the caller's users row, (with
    Redis) the per-user write limit, and safe retries (``Idempotency-Key``)."""
    middleware = []
    if settings.cors_allow_origins:
        # Browsers of the configured origins may call the API (the token travels in a header,
        # so no credentials mode); a preflight needs no token.
        cors = falcon.CORSMiddleware(
            allow_origins=list(settings.cors_allow_origins),
            expose_headers=["Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed"],
        )
        middleware.append(cors)
    middleware += [
        RequestId(),
        *([Tracing()] if tracing.enabled() else []),
        AccessLog(),
        BodyLimit(),
        RequireContentType(),
        DatabaseConnection(skip_paths=PUBLIC_PATHS),
        AuthMiddleware(verifier, public_paths=PUBLIC_PATHS, clock=lambda: clock().timestamp()),
        RecordCallers(),
    ]
    if redis_client is not None:
        middleware.append(
            WriteThrottle(
                settings.user_write_rate_per_minute,
                redis_client,
                settings.redis_namespace,
                clock=lambda: clock().timestamp(),
            )
        )
    # Last: it needs the caller and a connection, and a replay skips only the resource.
    middleware.append(Idempotency(clock))
    return middleware


def _speak_json(app: falcon.App) -> None:
    """Bodies are strict JSON, both ways: a form or multipart body is a 415, not a request
    parsed some other way."""
    app.req_options.strip_url_path_trailing_slash = True
    json_handler = falcon.media.JSONHandler(
        dumps=partial(json.dumps, default=_json_default, separators=(",", ":")),
        loads=_loads,
    )
    app.req_options.media_handlers = falcon.media.Handlers({falcon.MEDIA_JSON: json_handler})
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler


def _email_quota(settings: Settings, redis_client, clock) -> EmailQuota | None:
    """The daily limit of a user's ad-hoc emails, counted in Redis; none without it."""
    if redis_client is None:
        return None
    return EmailQuota(
        settings.user_emails_per_day,
        redis_client,
        settings.redis_namespace,
        clock=lambda: clock().timestamp(),
    )


def _add_routes(app: falcon.App, outbox: Outbox, clock, quota: EmailQuota | None) -> None:
    """The routes behind a bearer token."""
    emails = EmailIntake(outbox, clock, quota)
    _route(app, "/api/notifications/send-email", SendEmailResource(emails))
    _route(app, "/api/notifications/send-bulk-email", SendBulkEmailResource(emails))
    _route(
        app, "/api/notifications", NotificationsResource(NotificationIntake(outbox, clock), clock)
    )
    _route(app, "/api/jobs", JobsResource(clock))
    _route(app, "/api/jobs/{job_id:uuid}", JobResource(clock))
    _route(app, "/api/jobs/{job_id:uuid}/retry", JobRetryResource(outbox, clock))
    actions = BulkActions(outbox, clock)
    _route(app, "/api/jobs/retry", BulkRetryResource(actions))
    _route(app, "/api/jobs/cancel", BulkCancelResource(actions))
    _route(app, "/api/jobs/actions/{action_id:uuid}", BulkActionResource())
    _route(app, "/api/groups", GroupsResource(clock))
    _route(app, "/api/groups/{group_id:uuid}", GroupResource())
    _route(app, "/api/recipients", RecipientsResource(clock))
    _route(app, "/api/recipients/{recipient_id:uuid}", RecipientResource(clock))
    _route(app, "/api/updates", UpdatesResource(UpdatePoster(outbox, clock)))
    _route(app, "/api/digest-schedules", DigestSchedulesResource(clock))
    _route(app, "/api/digest-schedules/{schedule_id:uuid}", DigestScheduleResource(clock))
