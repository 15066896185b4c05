"""Who may do what: the bearer tokens (JWT secret, JWKS, issuers), the browsers that may call
the API (CORS) and what one user may send, SendGrid's signed webhook and the unsubscribe links."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlparse

from tribe_shared.settings.constants import (
    DEFAULT_JWT_JWKS_TIMEOUT_SECONDS,
    DEFAULT_JWT_MAX_LIFETIME_SECONDS,
    DEFAULT_PORT,
    DEFAULT_USER_EMAILS_PER_DAY,
    DEV_JWT_SECRET,
    DEV_UNSUBSCRIBE_SECRET,
    MIN_JWT_SECRET_LENGTH,
    MIN_UNSUBSCRIBE_SECRET_LENGTH,
    P256_PUBLIC_KEY_DER_LENGTH,
    P256_PUBLIC_KEY_DER_PREFIX,
    PLACEHOLDER_SECRET_MARKERS,
    SUPABASE_API_KEY_ISSUER,
    SUPABASE_ISSUER_PATH,
    SUPABASE_JWKS_PATH,
)
from tribe_shared.settings.parsing import ConfigError, _check_url, _Env


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


def _is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return secret == DEV_JWT_SECRET or any(m in lowered for m in PLACEHOLDER_SECRET_MARKERS)


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
    api_public_url = _api_public_url(env, app_env)
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


def _api_public_url(env: _Env, app_env: str) -> str | None:
    """``API_PUBLIC_URL``, where unsubscribe links point: required, and https://, in production;
    this machine's ``PORT`` in development."""
    production = app_env == "production"
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
    return api_public_url


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
