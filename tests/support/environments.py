"""Process environments for the tests of configuration and start-up."""

from __future__ import annotations

#: A complete production environment: every required variable, each valid.
PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://tribe@db.internal:5432/tribe",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "JWT_SECRET": "x" * 40,
    "SENDGRID_API_KEY": "SG.key",
    # The event webhook's key (a P-256 public key), the API's URL, the unsubscribe links' secret.
    "SENDGRID_WEBHOOK_PUBLIC_KEY": (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOG0jVCZR28dUkLdwi7akG6rJ2UNwfmxyq9w0HjRBvCKh"
        "Eu7q8jVGdKs5x8wJa0sYYn//7h10k5imlzgEg6HCjw=="
    ),
    "API_PUBLIC_URL": "https://jobs.tribe.example",
    "UNSUBSCRIBE_SECRET": "u" * 40,
}
