"""The :class:`Settings` dataclass: one process's validated configuration, and
:meth:`Settings.from_env`, which builds it from the environment area by area."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tribe_shared.settings.constants import (
    DEFAULT_CIRCUIT_FAILURE_THRESHOLD,
    DEFAULT_CIRCUIT_RESET_SECONDS,
    DEFAULT_CONSOLE_SESSION_MINUTES,
    DEFAULT_CONTENT_RETENTION_DAYS,
    DEFAULT_DATABASE_URL,
    DEFAULT_EMAIL_FROM,
    DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND,
    DEFAULT_JOB_LEASE_SECONDS,
    DEFAULT_JOB_RETENTION_DAYS,
    DEFAULT_JWT_JWKS_TIMEOUT_SECONDS,
    DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_OPENAI_MAX_TOKENS,
    DEFAULT_OPENAI_MODEL,
    DEFAULT_OPENAI_TIMEOUT_SECONDS,
    DEFAULT_OUTBOX_POLL_SECONDS,
    DEFAULT_PORT,
    DEFAULT_QUEUED_STALE_SECONDS,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_SENDGRID_API_HOST,
    DEFAULT_SMS_RATE_LIMIT_PER_SECOND,
    DEFAULT_SMTP_PORT,
    DEFAULT_SMTP_TIMEOUT_SECONDS,
    DEFAULT_TWILIO_API_BASE_URL,
    DEFAULT_USER_EMAILS_PER_DAY,
    DEFAULT_USER_WRITE_RATE_PER_MINUTE,
    DEV_JWT_SECRET,
    DEV_UNSUBSCRIBE_SECRET,
    ENVIRONMENTS,
)
from tribe_shared.settings.operations import _operations, _stores, _tuning
from tribe_shared.settings.parsing import ConfigError, _Env
from tribe_shared.settings.providers import _content, _email, _twilio
from tribe_shared.settings.security import _browsers_and_users, _tokens, _unsubscribing


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process. Build it with :meth:`from_env`."""

    app_env: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    jwt_secret: str = field(default=DEV_JWT_SECRET, repr=False)
    sendgrid_api_key: str | None = field(default=None, repr=False)
    sendgrid_api_host: str = DEFAULT_SENDGRID_API_HOST
    #: The sender's address (``EMAIL_FROM`` without its display name).
    email_from: str = DEFAULT_EMAIL_FROM
    #: The sender's display name (``EMAIL_FROM="Tribe <no-reply@tribe.app>"``); None: none.
    email_from_name: str | None = None
    email_rate_limit_per_second: float = DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND
    max_retries: int = DEFAULT_MAX_RETRIES
    port: int = DEFAULT_PORT
    #: Base of the exponential retry backoff; tests shorten it.
    retry_backoff_ms: int = DEFAULT_RETRY_BACKOFF_MS
    #: Consecutive transient provider failures that open the circuit.
    circuit_failure_threshold: int = DEFAULT_CIRCUIT_FAILURE_THRESHOLD
    #: How long the circuit stays open before one probe is let through.
    circuit_reset_seconds: float = DEFAULT_CIRCUIT_RESET_SECONDS
    #: Within one scheduler tick the outbox relay runs again after this many seconds.
    outbox_poll_seconds: float = DEFAULT_OUTBOX_POLL_SECONDS
    #: A job ``processing`` longer than this lost its worker; the reaper takes it back.
    job_lease_seconds: int = DEFAULT_JOB_LEASE_SECONDS
    #: A job ``queued`` this long past its due time is handed to the broker again.
    queued_stale_seconds: int = DEFAULT_QUEUED_STALE_SECONDS
    #: Prefix of every Redis key of ours (broker queues, circuit, rate limit).
    redis_namespace: str = "tribe"
    #: Where the Tribe app is served; emails link to it (the mute link). None: no such links.
    public_base_url: str | None = None
    #: Write requests (POST/PUT/PATCH/DELETE) one user may make per minute; 429 past it.
    user_write_rate_per_minute: int = DEFAULT_USER_WRITE_RATE_PER_MINUTE
    #: Where the public keys of asymmetric (ES256/RS256) tokens are; None: only HS256 tokens.
    jwt_jwks_url: str | None = None
    #: How long one connect or read of the JWKS URL may take before the fetch is given up.
    jwt_jwks_timeout_seconds: float = DEFAULT_JWT_JWKS_TIMEOUT_SECONDS
    #: The ``iss`` values a token may carry; empty: ``iss`` is not checked.
    jwt_issuers: tuple[str, ...] = ()
    #: The longest a token may be valid (``exp - iat``, or ``exp - now`` without ``iat``).
    jwt_max_lifetime_seconds: int = DEFAULT_JWT_MAX_LIFETIME_SECONDS
    #: Web origins whose pages may call the API from a browser (CORS); empty: none.
    cors_allow_origins: tuple[str, ...] = ()
    #: Ad-hoc emails one user may send a day (the service role is not counted).
    user_emails_per_day: int = DEFAULT_USER_EMAILS_PER_DAY
    #: SendGrid's event-webhook verification key (base64 DER, ECDSA P-256); None: the webhook
    #: answers 503 (production does not start without it).
    sendgrid_webhook_public_key: str | None = None
    #: Where this API is reached from outside (``https://…``): emails' unsubscribe links point
    #: at it. None: emails carry no List-Unsubscribe.
    api_public_url: str | None = None
    #: Signs unsubscribe links (HMAC-SHA256); its own secret, so rotating JWT_SECRET never
    #: breaks the links in emails already delivered.
    unsubscribe_secret: str = field(default=DEV_UNSUBSCRIBE_SECRET, repr=False)
    #: An address that takes unsubscribe requests by email (``List-Unsubscribe``'s ``mailto:``).
    unsubscribe_mailto: str | None = None
    #: Finished jobs, their delivery logs and events older than this are deleted.
    job_retention_days: int = DEFAULT_JOB_RETENTION_DAYS
    #: Finished jobs older than this lose their address and personal content.
    content_retention_days: int = DEFAULT_CONTENT_RETENTION_DAYS
    #: ``transaction``: the database is reached through a transaction-mode pooler.
    database_pooler: str = "none"
    #: Where traces go (OTLP over HTTP); None: tracing off, at no cost.
    otel_exporter_otlp_endpoint: str | None = None
    #: How long an operator's console session lasts before signing in again.
    console_session_minutes: int = DEFAULT_CONSOLE_SESSION_MINUTES
    #: The Grafana dashboard the console's overview links to; None: no link.
    grafana_url: str | None = None
    # --- Twilio: SMS and WhatsApp (issue #18) --------------------------------------------------
    #: Twilio's account and its auth token (also what signs Twilio's webhooks); None: SMS and
    #: WhatsApp jobs fail with "not configured".
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    #: The number SMS come from (E.164), or a messaging service (``MG…``) that picks one.
    twilio_sms_from: str | None = None
    twilio_messaging_service_sid: str | None = None
    #: The WhatsApp sender (``whatsapp:+1…``); None: WhatsApp jobs fail with "not configured".
    twilio_whatsapp_from: str | None = None
    #: Base URL of Twilio's REST API (tests point it at a local fake).
    twilio_api_base_url: str = DEFAULT_TWILIO_API_BASE_URL
    #: Messages per second across all workers (Twilio queues past its own rate per sender).
    sms_rate_limit_per_second: float = DEFAULT_SMS_RATE_LIMIT_PER_SECOND
    #: Approved WhatsApp templates (Content SIDs, ``HX…``) for updates and digests outside the
    #: 24-hour window; None: such jobs fail saying a template is needed.
    twilio_whatsapp_update_template: str | None = None
    twilio_whatsapp_digest_template: str | None = None

    # --- Content (issue #18 items 2, 5): the SMTP provider and failover, the AI summary ---
    #: ``sendgrid`` or ``smtp``: who sends emails (without a SendGrid key in development: files).
    email_provider: str = "sendgrid"
    #: The SMTP relay (``EMAIL_PROVIDER=smtp``, or the failover); None: no SMTP.
    smtp_host: str | None = None
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    #: Upgrade the connection with STARTTLS before anything is sent (the server must offer it).
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = DEFAULT_SMTP_TIMEOUT_SECONDS
    #: While SendGrid's circuit is open, send through the SMTP relay instead of waiting.
    email_failover_to_smtp: bool = False
    #: The model that writes digest summaries; None: no summaries (the plain digest).
    openai_api_key: str | None = field(default=None, repr=False)
    #: An OpenAI-compatible endpoint instead of OpenAI's; None: the client's default.
    openai_base_url: str | None = None
    openai_model: str = DEFAULT_OPENAI_MODEL
    #: The longest one summary may take before the digest goes out without it.
    openai_timeout_seconds: float = DEFAULT_OPENAI_TIMEOUT_SECONDS
    #: The longest summary, in tokens.
    openai_max_tokens: int = DEFAULT_OPENAI_MAX_TOKENS

    @property
    def transaction_pooler(self) -> bool:
        return self.database_pooler == "transaction"

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def uses_redis(self) -> bool:
        return self.redis_url is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the configuration; raise :class:`ConfigError` naming the variable."""
        env = _Env(os.environ if environ is None else environ)
        app_env = env.get("APP_ENV", "development")
        if app_env not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {app_env!r}")
        production = app_env == "production"
        return cls(
            app_env=app_env,
            **_stores(env, app_env),
            **_tokens(env, production),
            **_email(env, production),
            **_unsubscribing(env, app_env),
            **_tuning(env),
            **_browsers_and_users(env),
            **_operations(env),
            **_content(env, production),
            **_twilio(env),
        )
