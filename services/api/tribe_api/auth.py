"""Bearer-token authentication: JWTs as Supabase issues them.

Accepted, and nothing else (the algorithms are an allow-list, chosen by the token's header but
each bound to its own key, so no token can make one key serve another algorithm):

- **HS256**, signed with ``JWT_SECRET`` (Supabase's legacy shared secret; the development CLI);
- **ES256 / RS256**, signed by one of the project's asymmetric keys, looked up by the token's
  ``kid`` at the JWKS URL (``JWT_JWKS_URL``, or derived from ``SUPABASE_URL``).

A user token carries ``sub`` (the user's UUID), ``role: authenticated``, ``aud: authenticated``
and a numeric ``exp``. The project's ``service_role`` key has ``role: service_role`` and no
``sub`` and no ``aud``: it acts for no user (see :class:`Principal`). ``iss`` must be one of
the configured issuers when there are any. A token may not live longer than
``JWT_MAX_LIFETIME_SECONDS`` (``exp - iat``, or ``exp - now`` without ``iat``), except a
service-role token without ``sub``: that is the project's API key, which Supabase issues for
about ten years; it is revoked by rotating the secret, not by expiring.

Anything else is a 401 with ``WWW-Authenticate``. So is an asymmetric token whose key cannot be
fetched now (JWKS endpoint down or hanging, and the key not cached): we cannot tell it from a
forged one, and the 401's description says that it could not be verified and why.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import falcon
import jwt

from tribe_api.jwks import ALGORITHMS as JWKS_ALGORITHMS
from tribe_api.jwks import JwksKeys, KeysUnavailable, UnknownKey
from tribe_shared.settings import SUPABASE_API_KEY_ISSUER, Settings

#: The algorithm of tokens signed with ``JWT_SECRET``.
SHARED_SECRET_ALGORITHM = "HS256"
#: Every algorithm a token may use (never ``none``).
ALGORITHMS = (SHARED_SECRET_ALGORITHM, *JWKS_ALGORITHMS)
AUDIENCE = "authenticated"
AUTHENTICATED = "authenticated"
SERVICE_ROLE = "service_role"
ROLES = (AUTHENTICATED, SERVICE_ROLE)
#: Date claims that must be JSON numbers when present (RFC 7519 NumericDate).
NUMERIC_CLAIMS = ("exp", "iat", "nbf")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user of the token's ``sub``, and their role.

    ``user_id`` is None only for the service role's API key: it may read and act on everything,
    but creates nothing that must belong to a user (groups, recipients), and the jobs and emails
    it sends belong to their recipient's owner, or to no one.
    """

    user_id: uuid.UUID | None
    role: str
    #: When the token stops being valid (epoch seconds).
    expires_at: float = 0.0

    def __post_init__(self):
        if self.user_id is None and not self.is_service:
            raise ValueError("only the service role may act for no user")

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE_ROLE


class InvalidToken(Exception):
    pass


class TokenVerifier:
    """Checks a bearer token and says who sent it (see the module's note for what is accepted)."""

    def __init__(
        self,
        secret: str,
        *,
        jwks: JwksKeys | None = None,
        issuers: Sequence[str] = (),
        max_lifetime: timedelta = timedelta(days=1),
        clock: Callable[[], float] = time.time,
    ):
        self._secret = secret
        self._jwks = jwks
        self._issuers = tuple(issuers)
        self._max_lifetime = max_lifetime.total_seconds()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        jwks = None
        if settings.jwt_jwks_url is not None:
            jwks = JwksKeys(settings.jwt_jwks_url, timeout=settings.jwt_jwks_timeout_seconds)
        return cls(
            settings.jwt_secret,
            jwks=jwks,
            issuers=settings.jwt_issuers,
            max_lifetime=timedelta(seconds=settings.jwt_max_lifetime_seconds),
        )

    def verify(self, token: str) -> Principal:
        """The caller of a valid token; raise :class:`InvalidToken` saying what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"The token is malformed: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidToken(
                f"The token's algorithm {algorithm!r} is not accepted "
                f"(only {', '.join(ALGORITHMS)})"
            )
        claims = self._decode(token, algorithm, self._key_for(header))
        return self._principal(claims)

    def _key_for(self, header: dict):
        if header["alg"] == SHARED_SECRET_ALGORITHM:
            return self._secret
        if self._jwks is None:
            raise InvalidToken(
                f"{header['alg']} tokens are not accepted: no JWKS URL is configured "
                "(JWT_JWKS_URL or SUPABASE_URL)"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken(f"The token has no kid header naming its {header['alg']} key")
        try:
            return self._jwks.key_for(kid)
        except UnknownKey as exc:
            raise InvalidToken(f"The token is signed by an unknown key: {exc}") from None
        except KeysUnavailable as exc:
            raise InvalidToken(f"The token cannot be verified now: {exc}; try again") from None

    def _decode(self, token: str, algorithm: str, key) -> dict:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._issuers or None,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"The token is invalid: {exc}") from None
        for name in NUMERIC_CLAIMS:
            if name in claims and not _is_numeric_date(claims[name]):
                raise InvalidToken(
                    f"The token's {name} claim must be a date in seconds (a JSON number), "
                    f"not {_shown(claims[name])}"
                )
        return claims

    def _principal(self, claims: dict) -> Principal:
        role = claims.get("role", AUTHENTICATED)
        if role not in ROLES:
            raise InvalidToken(f"The token's role must be one of {', '.join(ROLES)}")
        sub = claims.get("sub")
        if sub is None and role != SERVICE_ROLE:
            raise InvalidToken("The token has no sub claim (the user's id)")
        try:
            user_id = None if sub is None else uuid.UUID(str(sub))
        except ValueError:
            raise InvalidToken("The token's sub claim is not a user id (UUID)") from None
        audience = claims.get("aud")
        if audience is None and user_id is not None:
            raise InvalidToken(f"The token has no aud claim (it must be {AUDIENCE!r})")
        if audience is not None and not (
            audience == AUDIENCE or (isinstance(audience, list) and AUDIENCE in audience)
        ):
            raise InvalidToken(f"The token's audience must be {AUDIENCE!r}")
        if user_id is not None:
            self._check_lifetime(claims)
        return Principal(user_id=user_id, role=role, expires_at=float(claims["exp"]))

    def _check_lifetime(self, claims: dict) -> None:
        issued = claims.get("iat", self._clock())
        lifetime = claims["exp"] - issued
        if lifetime > self._max_lifetime:
            since = "iat" if "iat" in claims else "now"
            raise InvalidToken(
                f"The token lives too long: exp is {_duration(lifetime)} after {since}, "
                f"more than the {_duration(self._max_lifetime)} accepted"
            )


def _is_numeric_date(value) -> bool:
    """A JSON number a float can hold (``"1767225600"``, ``true`` and 10**400 are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _shown(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86_400:
        return f"{int(seconds) // 86_400} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds) // 3600} hours"
    return f"{int(seconds)} seconds"


def mint_token(
    secret: str,
    *,
    user_id: uuid.UUID | None = None,
    role: str = AUTHENTICATED,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
    issuer: str | None = None,
) -> str:
    """Sign a user token as the main app's Supabase would (for development and the tests)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id or uuid.uuid4()),
        "role": role,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl,
    }
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=SHARED_SECRET_ALGORITHM)


def user_token_issuer(issuers: Sequence[str]) -> str | None:
    """The ``iss`` a minted user token needs to pass the check: the first accepted issuer that
    is not the API keys' ``supabase`` (a Supabase user token's), else the first; None unchecked."""
    preferred = [issuer for issuer in issuers if issuer != SUPABASE_API_KEY_ISSUER]
    return (preferred or list(issuers) or [None])[0]


def mint_service_role_key(
    secret: str,
    *,
    ref: str = "tribe-dev",
    ttl: timedelta = timedelta(days=3650),
    now: datetime | None = None,
) -> str:
    """Sign a ``service_role`` key shaped as a Supabase project's: ``iss: supabase``, ``ref``,
    ``role``, ``iat``, ``exp``; no ``sub``, no ``aud``."""
    issued = now or datetime.now(UTC)
    claims = {
        "iss": SUPABASE_API_KEY_ISSUER,
        "ref": ref,
        "role": SERVICE_ROLE,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm=SHARED_SECRET_ALGORITHM)


def _unauthorized(description: str) -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(
        title="Unauthorized",
        description=description,
        challenges=['Bearer realm="tribe-jobs"'],
    )


class AuthMiddleware:
    """Authenticates every request to a resource that does not opt out."""

    #: Verified tokens remembered per process (a client sends the same token many times).
    CACHE_SIZE = 10_000

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        public_paths: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ):
        self._verifier = verifier
        self._public_paths = public_paths
        #: Epoch seconds: a remembered token is used until its ``exp`` by this clock.
        self._clock = clock
        self._verified: dict[str, Principal] = {}

    def process_resource(self, req, resp, resource, params):
        if (
            resource is None
            or req.method == "OPTIONS"  # a browser's CORS preflight carries no token
            or not getattr(resource, "auth_required", True)
            or req.path in self._public_paths
        ):
            return
        header = req.get_header("Authorization")
        if not header:
            raise _unauthorized("An Authorization: Bearer <token> header is required")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("The Authorization header must be 'Bearer <token>'")
        req.context.principal = self._verify(token.strip())

    def _verify(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is not None and principal.expires_at > self._clock():
            return principal
        try:
            principal = self._verifier.verify(token)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = principal
        return principal
