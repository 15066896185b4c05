"""Configuration read from the environment, validated once at start-up.

Every process calls :meth:`Settings.from_env` before doing anything else. A missing or malformed
variable raises :class:`ConfigError` naming it; entry points print that message and exit non-zero
instead of failing later, deep inside a request.

The package, one module per concern (every name is importable from here, as before):

- :mod:`.constants`: the environments, the defaults, the development secrets, the schemes;
- :mod:`.parsing`: :class:`ConfigError` and the helpers every area reads variables with;
- :mod:`.model`: the :class:`Settings` dataclass and :meth:`Settings.from_env`;
- :mod:`.operations`: the database and Redis, the numbers, retention, pooler, tracing, console;
- :mod:`.security`: tokens (JWT, JWKS, issuers), CORS, the webhook's key, unsubscribe links;
- :mod:`.providers`: SendGrid, SMTP, Twilio and OpenAI;
- :mod:`.loading`: :func:`load_or_exit` and :func:`exit_on_config_error`, for entry points.
"""

from tribe_shared.settings.constants import (
    DATABASE_SCHEMES,
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
    EMAIL_PROVIDERS,
    ENVIRONMENTS,
    MIN_JWT_SECRET_LENGTH,
    MIN_UNSUBSCRIBE_SECRET_LENGTH,
    P256_PUBLIC_KEY_DER_LENGTH,
    P256_PUBLIC_KEY_DER_PREFIX,
    PLACEHOLDER_SECRET_MARKERS,
    POOLER_MODES,
    REDIS_SCHEMES,
    SUPABASE_API_KEY_ISSUER,
    SUPABASE_ISSUER_PATH,
    SUPABASE_JWKS_PATH,
)
from tribe_shared.settings.loading import exit_on_config_error, load_or_exit
from tribe_shared.settings.model import Settings
from tribe_shared.settings.parsing import ConfigError

__all__ = [
    "DATABASE_SCHEMES",
    "DEFAULT_CIRCUIT_FAILURE_THRESHOLD",
    "DEFAULT_CIRCUIT_RESET_SECONDS",
    "DEFAULT_CONSOLE_SESSION_MINUTES",
    "DEFAULT_CONTENT_RETENTION_DAYS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_EMAIL_FROM",
    "DEFAULT_EMAIL_RATE_LIMIT_PER_SECOND",
    "DEFAULT_JOB_LEASE_SECONDS",
    "DEFAULT_JOB_RETENTION_DAYS",
    "DEFAULT_JWT_JWKS_TIMEOUT_SECONDS",
    "DEFAULT_JWT_MAX_LIFETIME_SECONDS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_OPENAI_MAX_TOKENS",
    "DEFAULT_OPENAI_MODEL",
    "DEFAULT_OPENAI_TIMEOUT_SECONDS",
    "DEFAULT_OUTBOX_POLL_SECONDS",
    "DEFAULT_PORT",
    "DEFAULT_QUEUED_STALE_SECONDS",
    "DEFAULT_RETRY_BACKOFF_MS",
    "DEFAULT_SENDGRID_API_HOST",
    "DEFAULT_SMS_RATE_LIMIT_PER_SECOND",
    "DEFAULT_SMTP_PORT",
    "DEFAULT_SMTP_TIMEOUT_SECONDS",
    "DEFAULT_TWILIO_API_BASE_URL",
    "DEFAULT_USER_EMAILS_PER_DAY",
    "DEFAULT_USER_WRITE_RATE_PER_MINUTE",
    "DEV_JWT_SECRET",
    "DEV_UNSUBSCRIBE_SECRET",
    "EMAIL_PROVIDERS",
    "ENVIRONMENTS",
    "MIN_JWT_SECRET_LENGTH",
    "MIN_UNSUBSCRIBE_SECRET_LENGTH",
    "P256_PUBLIC_KEY_DER_LENGTH",
    "P256_PUBLIC_KEY_DER_PREFIX",
    "PLACEHOLDER_SECRET_MARKERS",
    "POOLER_MODES",
    "REDIS_SCHEMES",
    "SUPABASE_API_KEY_ISSUER",
    "SUPABASE_ISSUER_PATH",
    "SUPABASE_JWKS_PATH",
    "ConfigError",
    "Settings",
    "exit_on_config_error",
    "load_or_exit",
]
