"""SendGrid's signed event webhook: is this batch SendGrid's, and is it fresh?

SendGrid signs each POST with ECDSA P-256 over SHA-256 of the timestamp header's text followed by
the raw body, and sends the base64 DER signature and the timestamp in two headers. The body is
checked exactly as it arrived, before anything parses it. A batch whose timestamp is more than
:data:`MAX_AGE_SECONDS` old (or that far ahead of our clock) is refused even when its signature
is good: a captured batch cannot be replayed later. (A replay within the window stores nothing
twice: events are keyed by ``sg_event_id``.)

``sendgrid.helpers.eventwebhook.EventWebhook`` does the same check with the same library;
``tests/api/test_webhook_signature.py`` checks that both agree.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable

import falcon
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tribe_api.errors import Code
from tribe_shared.settings import ConfigError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
#: How old (or how far ahead) a batch's timestamp may be: a few minutes.
MAX_AGE_SECONDS = 300


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key SendGrid shows (base64 DER); a :class:`ConfigError` if it is not
    a P-256 public key."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA P-256 public key")
    return key


def refused(code: str, description: str) -> falcon.HTTPError:
    """A 401: the batch cannot be taken as SendGrid's. Nothing of it is stored."""
    return falcon.HTTPUnauthorized(
        title="Unverified webhook batch", description=description, code=code
    )


class EventWebhookVerifier:
    """Checks a batch's signature and age against one public key."""

    def __init__(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self._key = public_key
        self._max_age = max_age_seconds
        self._clock = clock

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return if SendGrid signed ``body`` at ``timestamp`` within the last few minutes;
        raise a 401 saying what is wrong otherwise (``code``: ``missing_signature``,
        ``invalid_signature`` or ``stale_batch``)."""
        if not signature or not timestamp:
            raise refused(
                Code.MISSING_SIGNATURE,
                f"A signed batch carries {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}",
            )
        try:
            der = base64.b64decode(signature, validate=True)
            self._key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, binascii.Error):
            raise refused(
                Code.INVALID_SIGNATURE,
                "The signature does not match this body and timestamp under SendGrid's key",
            ) from None
        try:
            age = self._clock() - int(timestamp)
        except ValueError:
            raise refused(Code.INVALID_SIGNATURE, "The timestamp is not Unix seconds") from None
        if abs(age) > self._max_age:
            raise refused(
                Code.STALE_BATCH,
                f"The batch was signed {int(age)} s ago; at most {int(self._max_age)} s are "
                "accepted (SendGrid signs each attempt anew)",
            )
