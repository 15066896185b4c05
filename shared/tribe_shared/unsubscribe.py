"""Unsubscribe links: a signed token naming a recipient, a group and what one click does.

The worker puts a link with a token in every update and digest email (``List-Unsubscribe``, RFC
8058); the API reads it back when a mail provider posts the one-click unsubscribe or a person
opens the page. No login: the token is the authority, so it is signed (HMAC-SHA256 with a key
derived from ``UNSUBSCRIBE_SECRET`` for this one purpose), unguessable, and cannot be altered;
it expires after :data:`TOKEN_LIFETIME`.

The token is 54 bytes, URL-safe base64 without padding (72 characters): a version byte, the
scope, the recipient's and the group's ids (16 bytes each, zeros for none), the time it was
issued (4 bytes, Unix seconds) and the first 16 bytes of the MAC over all of that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: How long a link works: longer than anyone keeps an email unread, shorter than forever.
TOKEN_LIFETIME = timedelta(days=180)
#: A token issued this far in the future (clocks disagree a little) is still taken.
CLOCK_SKEW = timedelta(minutes=5)
_VERSION = 1
_LAYOUT = struct.Struct(">BB16s16sI")
_MAC_BYTES = 16
_PURPOSE = b"tribe-jobs unsubscribe link v1"


class Scope(StrEnum):
    """What the link's one-click unsubscribe does."""

    GROUP = "group"  # no more of this group's update and digest emails
    ALL = "all"  # no more Tribe email at all (the address is suppressed)


_SCOPE_BYTES = {Scope.GROUP: 0, Scope.ALL: 1}


class BadToken(Exception):
    """The token is not one of ours: malformed, altered or forged."""


class ExpiredToken(Exception):
    """The token was ours, but it is older than :data:`TOKEN_LIFETIME`."""


@dataclass(frozen=True)
class UnsubscribeToken:
    recipient_id: uuid.UUID
    group_id: uuid.UUID | None
    scope: Scope
    issued_at: datetime


class UnsubscribeTokens:
    """Signs and reads tokens with one secret."""

    def __init__(self, secret: str, *, lifetime: timedelta = TOKEN_LIFETIME):
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
        self._lifetime = lifetime

    def sign(
        self, recipient_id: uuid.UUID, group_id: uuid.UUID | None, scope: Scope, now: datetime
    ) -> str:
        payload = _LAYOUT.pack(
            _VERSION,
            _SCOPE_BYTES[scope],
            recipient_id.bytes,
            (group_id or uuid.UUID(int=0)).bytes,
            int(now.timestamp()),
        )
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def read(self, token: str, now: datetime) -> UnsubscribeToken:
        """The token's contents; :class:`BadToken` or :class:`ExpiredToken` otherwise."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadToken("not a token") from None
        if len(raw) != _LAYOUT.size + _MAC_BYTES:
            raise BadToken("not a token")
        payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise BadToken("the signature does not match")
        version, scope, recipient, group, issued = _LAYOUT.unpack(payload)
        scopes = {value: name for name, value in _SCOPE_BYTES.items()}
        if version != _VERSION or scope not in scopes:
            raise BadToken("unknown version or scope")
        issued_at = datetime.fromtimestamp(issued, now.tzinfo)
        if issued_at > now + CLOCK_SKEW:
            raise BadToken("issued in the future")
        if now - issued_at > self._lifetime:
            days = self._lifetime.days
            raise ExpiredToken(f"issued {issued_at:%Y-%m-%d}, links last {days} days")
        group_id = uuid.UUID(bytes=group)
        return UnsubscribeToken(
            uuid.UUID(bytes=recipient),
            None if group_id.int == 0 else group_id,
            scopes[scope],
            issued_at,
        )

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


#: The path of the unsubscribe page and its one-click POST, below ``API_PUBLIC_URL``.
UNSUBSCRIBE_PATH = "/api/unsubscribe/{token}"


def unsubscribe_url(api_public_url: str, token: str) -> str:
    return api_public_url + UNSUBSCRIBE_PATH.format(token=token)
