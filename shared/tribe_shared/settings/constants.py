"""The configuration's fixed values: the environments, the defaults, the development secrets,
the URL schemes and the modes a variable may name."""

ENVIRONMENTS = ("development", "test", "production")

#: An operator's console session lasts this long (minutes): short, as a copied cookie is
#: good until then.
DEFAULT_CONSOLE_SESSION_MINUTES = 30
#: Signs development tokens; never accepted in production (JWT_SECRET is required there).
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
