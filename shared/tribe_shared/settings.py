"""Configuration read from the environment, validated once at start-up.

Every process calls :meth:`Settings.from_env` before doing anything else. A missing or malformed
variable raises :class:`ConfigError` naming it; entry points print that message and exit non-zero
instead of failing later, deep inside a request.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import urlparse

ENVIRONMENTS = ("development", "test", "production")

#: Signs development tokens; never accepted in production (JWT_SECRET is required there).
#: An operator's console session lasts this long (minutes): short, as a copied cookie is
#: good until then.
DEFAULT_CONSOLE_SESSION_MINUTES = 30
DEV_JWT_SECRET = "tribe-development-secret-do-not-use-in-production"

#: HS256 wants a key at least as long as its hash (RFC 7518 3.2).
MIN_JWT_SECRET_LENGTH = 32
#: Signs development unsubscribe links; never accepted in production (UNSUBSCRIBE_SECRET is
#: required there).
DEV_UNSUBSCRIBE_SECRET = "tribe-development-unsubscribe-secret-not-for-production"
#: An unsubscribe link is an HMAC-SHA256 key's: at least as long as its hash.
MIN_UNSUBSCRIBE_SECRET_LENGTH = 32
#: SendGrid's verification key: an ECDSA P-256 public key as base64 DER (SubjectPublicKeyInfo),
#: which is always 91 bytes and starts with the DER of the P-256 algorithm identifier.
P256_PUBLIC_KEY_DER_LENGTH = 91
P256_PUBLIC_KEY_DER_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
#: Words that mark a ``JWT_SECRET`` copied from an example rather than generated: production
#: refuses a secret containing one (anyone can read the example and sign tokens with it).
PLACEHOLDER_SECRET_MARKERS = (
    "change-me",
    "changeme",
    "replace-me",
    "placeholder",
    "example",
    "set-me",
)

DEFAULT_DATABASE_URL = "sqlite:///var/tribe.db"
DEFAULT_SENDGRID_API_HOST = "https://api.sendgrid.com"
DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_SMS_RATE_LIMIT_PER_SECOND = 10.0
DEFAULT_EMAIL_FROM = "no-reply@tribe.local"
DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND = 50.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_PORT = 8000
DEFAULT_RETRY_BACKOFF_MS = 15_000
DEFAULT_CIRCUIT_FAILURE_THRESHOLD = 5
DEFAULT_CIRCUIT_RESET_SECONDS = 30.0
DEFAULT_OUTBOX_POLL_SECONDS = 10.0
DEFAULT_JOB_LEASE_SECONDS = 600
DEFAULT_QUEUED_STALE_SECONDS = 1800
DEFAULT_USER_WRITE_RATE_PER_MINUTE = 120
DEFAULT_USER_EMAILS_PER_DAY = 200
#: Supabase's default access-token lifetime is one hour (at most a week, per project); the
#: development CLI mints 12 hours. One day covers both and refuses a token made to last for weeks.
DEFAULT_JWT_MAX_LIFETIME_SECONDS = 86_400
DEFAULT_JWT_JWKS_TIMEOUT_SECONDS = 2.0
DEFAULT_JOB_RETENTION_DAYS = 90
DEFAULT_CONTENT_RETENTION_DAYS = 30
#: ``DATABASE_POOLER`` values: ``none`` (a direct connection, or a pooler in session mode) or
#: ``transaction`` (PgBouncer/Supavisor in transaction mode: no prepared statements, no
#: session state).
POOLER_MODES = ("none", "transaction")

#: Where a Supabase project publishes its public signing keys, below ``SUPABASE_URL``.
SUPABASE_JWKS_PATH = "/auth/v1/.well-known/jwks.json"
#: The ``iss`` of a Supabase project's user tokens, below ``SUPABASE_URL``.
SUPABASE_ISSUER_PATH = "/auth/v1"
#: The ``iss`` of a Supabase project's legacy API keys (the ``service_role`` key among them).
SUPABASE_API_KEY_ISSUER = "supabase"

DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
REDIS_SCHEMES = ("redis", "rediss", "unix")


# Content (issue #18): the SMTP provider and the model of digest summaries.
#: The email providers ``EMAIL_PROVIDER`` names.
EMAIL_PROVIDERS = ("sendgrid", "smtp")
DEFAULT_SMTP_PORT = 587
DEFAULT_SMTP_TIMEOUT_SECONDS = 10.0
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_OPENAI_TIMEOUT_SECONDS = 10.0
DEFAULT_OPENAI_MAX_TOKENS = 200


class ConfigError(Exception):
    """A configuration variable is missing or has a value we cannot use."""


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


def _stores(env: _Env, app_env: str) -> dict:
    """The database and Redis."""
    database_url = env.get("DATABASE_URL")
    if database_url is None:
        if app_env != "development":
            raise ConfigError(
                f"A database is required when APP_ENV={app_env} - DATABASE_URL must be configured"
            )
        database_url = DEFAULT_DATABASE_URL
    _check_url("DATABASE_URL", database_url, DATABASE_SCHEMES)
    redis_url = env.get("REDIS_URL")
    if redis_url is None and app_env == "production":
        raise ConfigError("Redis is required for production - REDIS_URL must be configured")
    if redis_url is not None:
        _check_url("REDIS_URL", redis_url, REDIS_SCHEMES)
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_namespace": _namespace(env.get("REDIS_NAMESPACE", "tribe")),
    }


def _tokens(env: _Env, production: bool) -> dict:
    """What the API checks bearer tokens with."""
    jwt_secret = env.get("JWT_SECRET")
    if jwt_secret is None:
        if production:
            raise ConfigError(
                "A token secret is required for production - JWT_SECRET must be configured"
            )
        jwt_secret = DEV_JWT_SECRET
    if production and len(jwt_secret) < MIN_JWT_SECRET_LENGTH:
        raise ConfigError(
            f"JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters in production"
        )
    if production and _is_placeholder(jwt_secret):
        raise ConfigError(
            "JWT_SECRET is a placeholder - set it to the project's own secret in production "
            "(e.g. `openssl rand -base64 48`)"
        )
    jwt_jwks_url, jwt_issuers = _token_sources(env, production)
    return {
        "jwt_secret": jwt_secret,
        "jwt_jwks_url": jwt_jwks_url,
        "jwt_jwks_timeout_seconds": env.number(
            "JWT_JWKS_TIMEOUT_SECONDS", DEFAULT_JWT_JWKS_TIMEOUT_SECONDS, float, 0.1, 30
        ),
        "jwt_issuers": jwt_issuers,
        "jwt_max_lifetime_seconds": env.number(
            "JWT_MAX_LIFETIME_SECONDS", DEFAULT_JWT_MAX_LIFETIME_SECONDS, int, 60
        ),
    }


def _email(env: _Env, production: bool) -> dict:
    """The email provider, the sender, and where emails link to."""
    sendgrid_api_key = env.get("SENDGRID_API_KEY")
    smtp_only = env.get("EMAIL_PROVIDER", "sendgrid").lower() == "smtp"
    if sendgrid_api_key is None and production and not smtp_only:
        raise ConfigError(
            "SendGrid is required for production - SENDGRID_API_KEY must be configured"
        )
    sendgrid_api_host = env.get("SENDGRID_API_HOST", DEFAULT_SENDGRID_API_HOST).rstrip("/")
    _check_url("SENDGRID_API_HOST", sendgrid_api_host, ("http", "https"))
    email_from_name, email_from = _sender(env.get("EMAIL_FROM", DEFAULT_EMAIL_FROM))
    public_base_url = env.get("PUBLIC_BASE_URL")
    if public_base_url is not None:
        public_base_url = public_base_url.rstrip("/")
        _check_url("PUBLIC_BASE_URL", public_base_url, ("http", "https"))
    return {
        "sendgrid_api_key": sendgrid_api_key,
        "sendgrid_api_host": sendgrid_api_host,
        "email_from": email_from,
        "email_from_name": email_from_name,
        "public_base_url": public_base_url,
    }


def _browsers_and_users(env: _Env) -> dict:
    """Which web origins may call the API from a browser, and what one user may send."""
    origins = tuple(o.strip().rstrip("/") for o in (env.get("CORS_ALLOW_ORIGINS") or "").split(","))
    origins = tuple(o for o in origins if o)
    for origin in origins:
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path:
            raise ConfigError(
                "CORS_ALLOW_ORIGINS must be a comma-separated list of origins such as "
                f"https://app.tribe.example, not {origin!r}"
            )
    return {
        "cors_allow_origins": origins,
        "user_emails_per_day": env.number(
            "USER_EMAILS_PER_DAY", DEFAULT_USER_EMAILS_PER_DAY, int, 0
        ),
    }


def _sender(value: str) -> tuple[str | None, str]:
    """``EMAIL_FROM``: an address, or a display name and an address (``Tribe <a@b.c>``)."""
    problem = ConfigError(
        f"EMAIL_FROM must be an email address, or a name and an address "
        f"(Tribe <no-reply@tribe.app>), not {value!r}"
    )
    if any(c in value for c in "\r\n\0"):
        raise problem
    name, address = parseaddr(value)
    if "<" in value and not (value.rstrip().endswith(">") and name):
        raise problem
    if "<" not in value and value.strip() != address:
        raise problem
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c in address for c in " <>\"'"):
        raise problem
    return (name.strip() or None), address


def _twilio(env: _Env) -> dict:
    """Twilio, for SMS and WhatsApp: optional (jobs on those channels fail clearly without it),
    but an account needs its token and a sender, and a sender must look like one."""
    sid, token = env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")
    if (sid is None) != (token is None):
        missing = "TWILIO_AUTH_TOKEN" if token is None else "TWILIO_ACCOUNT_SID"
        raise ConfigError(f"Twilio needs both its account and its token - {missing} is not set")
    sms_from = env.get("TWILIO_SMS_FROM")
    service = env.get("TWILIO_MESSAGING_SERVICE_SID")
    whatsapp_from = env.get("TWILIO_WHATSAPP_FROM")
    if sms_from is not None and not re.fullmatch(r"\+[1-9]\d{6,14}", sms_from):
        raise ConfigError(
            f"TWILIO_SMS_FROM must be an E.164 number (+15551234567), not {sms_from!r}"
        )
    if service is not None and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
        raise ConfigError(
            f"TWILIO_MESSAGING_SERVICE_SID must be MG and 32 hex digits, not {service!r}"
        )
    if whatsapp_from is not None and not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", whatsapp_from):
        raise ConfigError(
            f"TWILIO_WHATSAPP_FROM must be whatsapp:<E.164 number>, not {whatsapp_from!r}"
        )
    if sid is not None and sms_from is None and service is None and whatsapp_from is None:
        raise ConfigError(
            "Twilio needs a sender - set TWILIO_SMS_FROM, TWILIO_MESSAGING_SERVICE_SID "
            "or TWILIO_WHATSAPP_FROM"
        )
    templates = {}
    for kind in ("update", "digest"):
        name = f"TWILIO_WHATSAPP_{kind.upper()}_TEMPLATE"
        value = env.get(name)
        if value is not None and not re.fullmatch(r"HX[0-9a-fA-F]{32}", value):
            raise ConfigError(f"{name} must be a Content SID (HX and 32 hex digits), not {value!r}")
        templates[f"twilio_whatsapp_{kind}_template"] = value
    base_url = env.get("TWILIO_API_BASE_URL", DEFAULT_TWILIO_API_BASE_URL).rstrip("/")
    _check_url("TWILIO_API_BASE_URL", base_url, ("http", "https"))
    rate = env.number("SMS_RATE_LIMIT_PER_SECOND", DEFAULT_SMS_RATE_LIMIT_PER_SECOND, float, 0.001)
    return {
        "twilio_account_sid": sid,
        "twilio_auth_token": token,
        "twilio_sms_from": sms_from,
        "twilio_messaging_service_sid": service,
        "twilio_whatsapp_from": whatsapp_from,
        "twilio_api_base_url": base_url,
        "sms_rate_limit_per_second": rate,
        **templates,
    }


def _unsubscribing(env: _Env, app_env: str) -> dict:
    """SendGrid's event webhook and the one-click unsubscribe links (RFC 8058).

    In production the webhook's key, the API's public HTTPS URL and the links' secret are
    required: without them bounces and complaints would go unheard and emails would carry no
    unsubscribe link, which Gmail and Yahoo require of bulk senders.
    """
    production = app_env == "production"
    key = env.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if key is None and production:
        raise ConfigError(
            "SendGrid's event webhook is required for production - "
            "SENDGRID_WEBHOOK_PUBLIC_KEY must be configured"
        )
    if key is not None:
        _check_public_key(key)
    api_public_url = env.get("API_PUBLIC_URL")
    if api_public_url is None:
        if production:
            raise ConfigError(
                "Unsubscribe links need the API's address in production - "
                "API_PUBLIC_URL must be configured"
            )
        if app_env == "development":
            api_public_url = f"http://127.0.0.1:{env.number('PORT', DEFAULT_PORT, int, 1, 65535)}"
    if api_public_url is not None:
        api_public_url = api_public_url.rstrip("/")
        _check_url("API_PUBLIC_URL", api_public_url, ("http", "https"))
        if production and urlparse(api_public_url).scheme != "https":
            raise ConfigError(
                f"API_PUBLIC_URL must be an https:// URL in production (RFC 8058), "
                f"not {api_public_url!r}"
            )
    secret = env.get("UNSUBSCRIBE_SECRET")
    if secret is None:
        if production:
            raise ConfigError(
                "Unsubscribe links need a secret in production - "
                "UNSUBSCRIBE_SECRET must be configured"
            )
        secret = DEV_UNSUBSCRIBE_SECRET
    if production and (_is_placeholder(secret) or secret == DEV_UNSUBSCRIBE_SECRET):
        raise ConfigError(
            "UNSUBSCRIBE_SECRET is a placeholder - set it to a long random secret in production"
        )
    if production and len(secret) < MIN_UNSUBSCRIBE_SECRET_LENGTH:
        raise ConfigError(
            f"UNSUBSCRIBE_SECRET must be at least {MIN_UNSUBSCRIBE_SECRET_LENGTH} characters "
            "in production"
        )
    mailto = env.get("UNSUBSCRIBE_MAILTO")
    if mailto is not None:
        local, _, domain = mailto.rpartition("@")
        if not local or "." not in domain or any(c in mailto for c in " <>?&:\"'\r\n"):
            raise ConfigError(f"UNSUBSCRIBE_MAILTO must be an email address, not {mailto!r}")
    return {
        "sendgrid_webhook_public_key": key,
        "api_public_url": api_public_url,
        "unsubscribe_secret": secret,
        "unsubscribe_mailto": mailto,
    }


def _check_public_key(value: str) -> None:
    """A base64 DER ECDSA P-256 public key, as SendGrid shows it (checked by its shape here;
    the API loads it, :mod:`tribe_api.webhook_signature`)."""
    try:
        der = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if len(der) != P256_PUBLIC_KEY_DER_LENGTH or not der.startswith(P256_PUBLIC_KEY_DER_PREFIX):
        raise ConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY must be the verification key SendGrid shows for the "
            "signed event webhook (base64 of an ECDSA P-256 public key)"
        )


def _tuning(env: _Env) -> dict:
    """The numbers: rates, retries, timings, the port."""
    number = env.number
    return {
        "email_rate_limit_per_second": number(
            "EMAIL_RATE_LIMIT_PER_SECOND", DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND, float, 0.001
        ),
        "max_retries": number("MAX_RETRIES", DEFAULT_MAX_RETRIES, int, 0),
        "port": number("PORT", DEFAULT_PORT, int, 1, 65535),
        "retry_backoff_ms": number("RETRY_BACKOFF_MS", DEFAULT_RETRY_BACKOFF_MS, int, 1),
        "circuit_failure_threshold": number(
            "CIRCUIT_FAILURE_THRESHOLD", DEFAULT_CIRCUIT_FAILURE_THRESHOLD, int, 1
        ),
        "circuit_reset_seconds": number(
            "CIRCUIT_RESET_SECONDS", DEFAULT_CIRCUIT_RESET_SECONDS, float, 0.1
        ),
        "outbox_poll_seconds": number(
            "OUTBOX_POLL_SECONDS", DEFAULT_OUTBOX_POLL_SECONDS, float, 0.1, 60
        ),
        "job_lease_seconds": number("JOB_LEASE_SECONDS", DEFAULT_JOB_LEASE_SECONDS, int, 1),
        "queued_stale_seconds": number(
            "QUEUED_STALE_SECONDS", DEFAULT_QUEUED_STALE_SECONDS, int, 1
        ),
        "user_write_rate_per_minute": number(
            "USER_WRITE_RATE_PER_MINUTE", DEFAULT_USER_WRITE_RATE_PER_MINUTE, int, 1
        ),
    }


def _operations(env: _Env) -> dict:
    """Running it for years: retention, the database pooler, tracing."""
    number = env.number
    pooler = env.get("DATABASE_POOLER", "none").lower()
    if pooler not in POOLER_MODES:
        raise ConfigError(
            f"DATABASE_POOLER must be one of {', '.join(POOLER_MODES)}, not {pooler!r}"
        )
    grafana_url = env.get("GRAFANA_URL")
    if grafana_url is not None:
        _check_url("GRAFANA_URL", grafana_url, ("http", "https"))
    otel_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if otel_endpoint is not None:
        _check_url("OTEL_EXPORTER_OTLP_ENDPOINT", otel_endpoint, ("http", "https"))
    return {
        "job_retention_days": number("JOB_RETENTION_DAYS", DEFAULT_JOB_RETENTION_DAYS, int, 1),
        "content_retention_days": number(
            "CONTENT_RETENTION_DAYS", DEFAULT_CONTENT_RETENTION_DAYS, int, 1
        ),
        "database_pooler": pooler,
        "otel_exporter_otlp_endpoint": otel_endpoint,
        "console_session_minutes": number(
            "CONSOLE_SESSION_MINUTES", DEFAULT_CONSOLE_SESSION_MINUTES, int, 1, 720
        ),
        "grafana_url": grafana_url,
    }


def _content(env: _Env, production: bool) -> dict:
    """Issue #18: the SMTP provider (or failover to it) and the model of digest summaries."""
    number = env.number
    provider = env.get("EMAIL_PROVIDER", "sendgrid").lower()
    if provider not in EMAIL_PROVIDERS:
        raise ConfigError(
            f"EMAIL_PROVIDER must be one of {', '.join(EMAIL_PROVIDERS)}, not {provider!r}"
        )
    failover = _flag(env, "EMAIL_FAILOVER_TO_SMTP", False)
    smtp_host = env.get("SMTP_HOST")
    if smtp_host is None and (provider == "smtp" or failover):
        why = "EMAIL_PROVIDER=smtp" if provider == "smtp" else "EMAIL_FAILOVER_TO_SMTP"
        raise ConfigError(f"An SMTP relay is required by {why} - SMTP_HOST must be configured")
    username, password = env.get("SMTP_USERNAME"), env.get("SMTP_PASSWORD")
    if (username is None) != (password is None):
        raise ConfigError("SMTP_USERNAME and SMTP_PASSWORD must be configured together")
    base_url = env.get("OPENAI_BASE_URL")
    if base_url is not None:
        _check_url("OPENAI_BASE_URL", base_url, ("http", "https"))
    return {
        "email_provider": provider,
        "smtp_host": smtp_host,
        "smtp_port": number("SMTP_PORT", DEFAULT_SMTP_PORT, int, 1, 65535),
        "smtp_username": username,
        "smtp_password": password,
        "smtp_starttls": _flag(env, "SMTP_STARTTLS", True),
        "smtp_timeout_seconds": number(
            "SMTP_TIMEOUT_SECONDS", DEFAULT_SMTP_TIMEOUT_SECONDS, float, 0.1, 300
        ),
        "email_failover_to_smtp": failover,
        "openai_api_key": env.get("OPENAI_API_KEY"),
        "openai_base_url": base_url,
        "openai_model": env.get("OPENAI_MODEL", DEFAULT_OPENAI_MODEL),
        "openai_timeout_seconds": number(
            "OPENAI_TIMEOUT_SECONDS", DEFAULT_OPENAI_TIMEOUT_SECONDS, float, 0.1, 120
        ),
        "openai_max_tokens": number("OPENAI_MAX_TOKENS", DEFAULT_OPENAI_MAX_TOKENS, int, 16, 2000),
    }


def _flag(env: _Env, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return secret == DEV_JWT_SECRET or any(m in lowered for m in PLACEHOLDER_SECRET_MARKERS)


def load_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """:meth:`Settings.from_env` for entry points: print the problem and exit 2 on a bad config."""
    with exit_on_config_error():
        return Settings.from_env(environ)


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """For entry points: a :class:`ConfigError` raised inside prints its one line and exits 2.

    Settings are not the only start-up step that reads configuration: a provider reads its
    own variables (the proxy ones) when it is built.
    """
    try:
        yield
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class _Env:
    """Reads variables, treating an empty value as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or default

    def number(self, name, default, kind, minimum, maximum=None):
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{name} must be {noun}, not {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise ConfigError(f"{name} must be {bounds}, not {raw!r}")
        return value


def _token_sources(env: _Env, production: bool) -> tuple[str | None, tuple[str, ...]]:
    """The JWKS URL and the accepted issuers, from ``JWT_JWKS_URL``/``JWT_ISSUER`` or else
    derived from ``SUPABASE_URL``.

    A Supabase project's user tokens carry ``iss: <SUPABASE_URL>/auth/v1`` and its legacy API
    keys (the ``service_role`` key) ``iss: supabase``, so both are accepted when only
    ``SUPABASE_URL`` is given. In production the keys must come over HTTPS: whoever could
    answer a plain-HTTP fetch could sign tokens.
    """
    supabase_url = env.get("SUPABASE_URL")
    if supabase_url is not None:
        supabase_url = supabase_url.rstrip("/")
        _check_url("SUPABASE_URL", supabase_url, ("http", "https"))

    jwks_url = env.get("JWT_JWKS_URL")
    name = "JWT_JWKS_URL"
    if jwks_url is None and supabase_url is not None:
        jwks_url, name = supabase_url + SUPABASE_JWKS_PATH, "SUPABASE_URL"
    if jwks_url is not None:
        _check_url(name, jwks_url, ("http", "https"))
        if production and urlparse(jwks_url).scheme != "https":
            raise ConfigError(f"{name} must be an https:// URL in production, not {jwks_url!r}")

    issuers: tuple[str, ...] = ()
    raw_issuers = env.get("JWT_ISSUER")
    if raw_issuers is not None:
        issuers = tuple(part.strip() for part in raw_issuers.split(","))
        if not all(issuers):
            raise ConfigError(
                f"JWT_ISSUER must be issuers separated by commas, not {raw_issuers!r}"
            )
    elif supabase_url is not None:
        issuers = (supabase_url + SUPABASE_ISSUER_PATH, SUPABASE_API_KEY_ISSUER)
    return jwks_url, issuers


def _namespace(value: str) -> str:
    if not all(c.isalnum() or c in "-_." for c in value):
        raise ConfigError(
            f"REDIS_NAMESPACE may hold only letters, digits, '-', '_', '.': {value!r}"
        )
    return value


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parsed = urlparse(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme not in schemes:
        raise ConfigError(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, "
            f"not {value!r}"
        )
    if scheme in ("http", "https", "postgres", "postgresql", "redis", "rediss"):
        if not parsed.hostname:
            raise ConfigError(f"{name} has no host: {value!r}")
        try:
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(f"{name} has an invalid port: {value!r}") from None
    if scheme == "sqlite" and not parsed.path.strip("/"):
        raise ConfigError(f"{name} names no database file: {value!r}")
