"""Process environments for the tests of configuration and start-up."""

from __future__ import annotations

#: A complete production environment: every required variable, each valid.
PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://tribe@db.internal:5432/tribe",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "JWT_SECRET": "x" * 40,
    "SENDGRID_API_KEY": "SG.key",
}
