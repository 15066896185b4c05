"""SendGrid's signed event webhook as SendGrid does it: an ECDSA P-256 key pair, batches signed
over the timestamp followed by the raw body, posted with the two headers."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

WEBHOOK_PATH = "/api/webhooks/sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@dataclass
class SendGridSigner:
    """The signing side of SendGrid's event webhook, with a key of its own."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        return public_key_text(self.key)

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json",
        }


def event(kind: str, email: str = "nana@example.com", job_id=None, **fields) -> dict:
    """One event as SendGrid posts it (the send's ``custom_args`` at the top level)."""
    body = {
        "email": email,
        "timestamp": fields.pop("timestamp", int(time.time())),
        "event": kind,
        "sg_event_id": fields.pop("sg_event_id", uuid.uuid4().hex),
        "sg_message_id": fields.pop("sg_message_id", "14c5d75ce93.dfd.64b469.filter0001.16648"),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        **fields,
    }
    if job_id is not None:
        body["job_id"] = str(job_id)
    return body


def batch_body(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()


def post_batch(api, signer: SendGridSigner, *events: dict, timestamp: int | None = None):
    body = batch_body(*events)
    return api.simulate_post(WEBHOOK_PATH, body=body, headers=signer.headers(body, timestamp))
