"""Bearer-token authentication: Supabase-style HS256 JWTs signed with ``JWT_SECRET``.

Every route needs a valid token unless its resource sets ``auth_required = False``. A missing,
malformed, expired or forged token, or one with ``alg: none``, is a 401 with ``WWW-Authenticate``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import falcon
import jwt

ALGORITHM = "HS256"
AUDIENCE = "authenticated"
ROLES = ("authenticated", "service_role")
SERVICE_ROLE = "service_role"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user of the token's ``sub`` and their role."""

    user_id: uuid.UUID
    role: str
    #: When the token stops being valid (epoch seconds).
    expires_at: float = 0.0

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE_ROLE


class InvalidToken(Exception):
    pass


def decode_token(token: str, secret: str) -> Principal:
    """Verify signature, expiry and audience; return the caller or raise :class:`InvalidToken`."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"The token is invalid: {exc}") from None
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise InvalidToken("The token's sub claim is not a user id (UUID)") from None
    role = claims.get("role", "authenticated")
    if role not in ROLES:
        raise InvalidToken(f"The token's role must be one of {', '.join(ROLES)}")
    return Principal(user_id=user_id, role=role, expires_at=float(claims["exp"]))


def mint_token(
    secret: str,
    *,
    user_id: uuid.UUID | None = None,
    role: str = "authenticated",
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """Sign a token as the main app would (used by the development CLI and the tests)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id or uuid.uuid4()),
        "role": role,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


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

    def __init__(self, secret: str, *, public_paths: tuple[str, ...] = ()):
        self._secret = secret
        self._public_paths = public_paths
        self._verified: dict[str, Principal] = {}

    def process_resource(self, req, resp, resource, params):
        if (
            resource is None
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
        if principal is not None and principal.expires_at > time.time():
            return principal
        try:
            principal = decode_token(token, self._secret)
        except InvalidToken as exc:
            raise _unauthorized(str(exc)) from None
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = principal
        return principal
