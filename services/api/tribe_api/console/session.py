"""Console sessions: a service-role token exchanged for a short-lived signed cookie.

The operator pastes the project's service-role key (or any service-role token) once; the API
verifies it as it verifies every bearer token and answers with a cookie that carries no token,
only who signed in, a random session id and when it expires, signed with HMAC-SHA256. The key
is derived from ``JWT_SECRET`` for this one purpose: whoever holds that secret can mint
service-role tokens anyway, so the cookie adds no new secret to guard, and rotating it signs
every operator out. (Not itsdangerous: it is not a dependency of ours, and the unsubscribe
links already sign this way, :mod:`tribe_shared.unsubscribe`.)

The cookie is ``HttpOnly`` (no script reads it), ``Secure`` (HTTPS only; browsers take it on
``localhost`` too), ``SameSite=Strict`` (no other site's page sends it) and limited to
``/admin``. Every form carries a CSRF token, an HMAC of the session id: a page of another
origin can neither read it nor guess it. Sessions are stateless: signing out deletes the cookie
in the browser, and a copied cookie lives at most ``CONSOLE_SESSION_MINUTES``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "tribe_console"
COOKIE_PATH = "/admin"
_PURPOSE = b"tribe-jobs console session v1"
_MAC_BYTES = 32


class NoSession(Exception):
    """No cookie, or one that is not ours, altered, or expired."""


@dataclass(frozen=True)
class Session:
    #: Who signed in: the name they gave and which key (its fingerprint).
    operator: str
    session_id: str
    expires_at: datetime
    csrf_token: str


def key_fingerprint(token: str) -> str:
    """A short, stable name of a token that reveals nothing of it (for the audit log)."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class ConsoleSessions:
    """Signs and reads session cookies and their CSRF tokens with one secret."""

    def __init__(self, secret: str, lifetime: timedelta):
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
        self.lifetime = lifetime

    def sign(self, operator: str, now: datetime) -> str:
        """A cookie value for ``operator``, valid for :attr:`lifetime` from ``now``."""
        payload = json.dumps(
            {
                "op": operator,
                "sid": secrets.token_hex(16),
                "exp": int((now + self.lifetime).timestamp()),
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(b'session:' + payload))}"

    def read(self, value: str | None, now: datetime) -> Session:
        """The session of a cookie value; :class:`NoSession` if there is none valid."""
        if not value or value.count(".") != 1:
            raise NoSession("no session")
        body, mac = value.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise NoSession("malformed") from None
        if not hmac.compare_digest(given, self._mac(b"session:" + payload)):
            raise NoSession("not signed by us")
        claims = json.loads(payload)
        expires = datetime.fromtimestamp(claims["exp"], now.tzinfo)
        if expires <= now:
            raise NoSession("expired")
        sid = claims["sid"]
        return Session(claims["op"], sid, expires, self.csrf_token(sid))

    def csrf_token(self, session_id: str) -> str:
        return _b64(self._mac(b"csrf:" + session_id.encode()))

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), session.csrf_token.encode())

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
