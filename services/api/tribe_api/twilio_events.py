"""What Twilio's webhook tells, applied: status callbacks become job delivery outcomes, inbound
messages open WhatsApp's 24-hour window, and STOP / START suppress and restore a number.

Twilio signs every request with ``X-Twilio-Signature``: HMAC-SHA1, keyed with the account's
auth token, over the full URL it requested followed by the form's fields sorted by name
(checked with the official package's ``RequestValidator``). Its signature carries no time, so a
captured request can be posted again: each callback is stored once, keyed by the message and
its status (an inbound message by its SID), and only new ones are applied; a replay changes
nothing. A signature of another URL (another job's callback) or of another body is refused.

- **Status callbacks** (``MessageStatus``, the job named by the ``job_id`` of the callback URL
  the worker gave Twilio): ``delivered`` and WhatsApp's ``read`` → outcome ``delivered``;
  ``undelivered`` → ``bounced``; ``failed`` → ``dropped`` (with Twilio's ``ErrorCode``);
  ``queued``, ``sending``, ``sent`` are stored only. An error 21610 (the number replied STOP
  to a sender of ours) suppresses the number too.
- **Inbound messages** (``Body``, ``From``): stored as an ``inbound`` event of the sender's
  address (``+1555…`` or ``whatsapp:+1555…``). ``STOP`` (or Twilio's other opt-out words, or
  ``OptOutType=STOP`` from Advanced Opt-Out) suppresses that address, ``unsubscribed``;
  ``START`` (``UNSTOP``, ``YES``, ``OptOutType=START``) lifts a suppression of that kind.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import falcon
from twilio.request_validator import RequestValidator

from tribe_api.errors import Code
from tribe_shared.contract import DeliveryOutcome, SuppressionReason
from tribe_shared.db import database
from tribe_shared.models import Suppression
from tribe_shared.sql.events import EventRow, OutcomeRow, SuppressRow, apply_outcome, store_events
from tribe_shared.sql.events import suppress as suppress_addresses

SIGNATURE_HEADER = "X-Twilio-Signature"
#: Twilio's default opt-out and opt-in keywords (a message that is exactly one of them).
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
#: A status callback's ``MessageStatus`` → the job's outcome (others are stored only).
OUTCOMES = {
    "delivered": DeliveryOutcome.DELIVERED,
    "read": DeliveryOutcome.DELIVERED,
    "undelivered": DeliveryOutcome.BOUNCED,
    "failed": DeliveryOutcome.DROPPED,
}
#: Twilio's error for a message to a number that replied STOP.
UNSUBSCRIBED_RECIPIENT = "21610"
INBOUND = "inbound"
#: What of a request is kept besides the event's columns.
DETAIL_KEYS = (
    "ErrorCode",
    "ErrorMessage",
    "OptOutType",
    "SmsStatus",
    "NumSegments",
    "ChannelPrefix",
)


def unsigned(description: str, code: Code) -> falcon.HTTPError:
    return falcon.HTTPUnauthorized(title="Unauthorized", description=description, code=code)


class TwilioSignature:
    """Checks ``X-Twilio-Signature`` over the URL Twilio requested (``public_url`` and the
    request's path and query) and the form's fields."""

    def __init__(self, auth_token: str, public_url: str | None):
        self._validator = RequestValidator(auth_token)
        self._public_url = public_url

    def verify(self, req: falcon.Request, form: dict[str, str]) -> None:
        signature = req.get_header(SIGNATURE_HEADER)
        if not signature:
            raise unsigned(f"{SIGNATURE_HEADER} is missing", Code.MISSING_SIGNATURE)
        url = req.uri
        if self._public_url is not None:
            query = f"?{req.query_string}" if req.query_string else ""
            url = f"{self._public_url}{req.path}{query}"
        if not self._validator.validate(url, form, signature):
            raise unsigned(
                "The signature is not Twilio's for this URL and body", Code.INVALID_SIGNATURE
            )


@dataclass(frozen=True)
class Received:
    #: What the request was: ``status``, ``inbound``; and the event it stored ("" : a replay).
    kind: str
    event: str
    new: bool


def record(form: dict[str, str], job_id: str | None, now: datetime) -> Received:
    """Store the request's event once and apply it, all or none."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid or len(sid) > 64:
        raise falcon.HTTPBadRequest(
            title="Malformed webhook request",
            description="MessageSid is missing",
            code=Code.MALFORMED_BATCH,
        )
    status = (form.get("MessageStatus") or "").lower()
    with database.atomic():
        if status and status != "received":
            return _status_callback(form, sid, status, _uuid(job_id), now)
        return _inbound(form, sid, now)


def _status_callback(form, sid: str, status: str, job_id, now: datetime) -> Received:
    address = _address(form.get("To", ""))
    row = _row(f"twilio:{sid}:{status}"[:100], job_id, status, address, now, sid, form)
    if not store_events([row]):
        return Received("status", status, new=False)
    outcome = OUTCOMES.get(status)
    if outcome is not None and job_id is not None:
        apply_outcome(outcome, [OutcomeRow(job_id, now, _reason(form))])
    if form.get("ErrorCode") == UNSUBSCRIBED_RECIPIENT and address:
        suppress_addresses(
            [SuppressRow(address, SuppressionReason.UNSUBSCRIBED, _reason(form), "twilio:21610")],
            now,
        )
    return Received("status", status, new=True)


def _inbound(form, sid: str, now: datetime) -> Received:
    address = _address(form.get("From", ""))
    if not address:
        raise falcon.HTTPBadRequest(
            title="Malformed webhook request",
            description="From is missing",
            code=Code.MALFORMED_BATCH,
        )
    row = _row(f"twilio:{sid}"[:100], None, INBOUND, address, now, sid, form)
    if not store_events([row]):
        return Received(INBOUND, INBOUND, new=False)
    keyword = _keyword(form)
    if keyword in STOP_WORDS:
        reason = SuppressionReason.UNSUBSCRIBED
        suppress_addresses([SuppressRow(address, reason, f"replied {keyword}", "twilio:STOP")], now)
        return Received(INBOUND, "stop", new=True)
    if keyword in START_WORDS:
        Suppression.delete().where(
            Suppression.email == address,
            Suppression.reason == SuppressionReason.UNSUBSCRIBED,
        ).execute()
        return Received(INBOUND, "start", new=True)
    return Received(INBOUND, INBOUND, new=True)


def _keyword(form: dict[str, str]) -> str:
    """The opt-out or opt-in word of an inbound message: Advanced Opt-Out's, else the body's."""
    told = (form.get("OptOutType") or "").upper()
    if told in ("STOP", "START"):
        return told
    return (form.get("Body") or "").strip().rstrip(".!").upper()


def _row(key, job_id, event, address, now, sid, form) -> EventRow:
    detail = {k: form[k] for k in DETAIL_KEYS if form.get(k)}
    if form.get("Body") and event == INBOUND:
        detail["body_length"] = len(form["Body"])  # the text itself is the recipient's own
    return EventRow(
        sg_event_id=key,
        job_id=job_id,
        event=event[:32],
        email=address[:320],
        occurred_at=now,
        received_at=now,
        sg_message_id=sid,
        detail=json.loads(json.dumps(detail)),
    )


def _address(value: str) -> str:
    """A number as suppressions key it: ``+1555…`` (SMS) or ``whatsapp:+1555…``."""
    value = value.strip()
    if value.lower().startswith("whatsapp:"):
        return "whatsapp:" + value.split(":", 1)[1].strip()
    return value


def _reason(form: dict[str, str]) -> str | None:
    code, message = form.get("ErrorCode"), form.get("ErrorMessage")
    if not code:
        return None
    return f"Twilio error {code}" + (f": {message}" if message else "")


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
