"""``POST /api/webhooks/sendgrid``: SendGrid's signed event webhook.

No bearer token: the batch is authenticated by SendGrid's signature over the timestamp and the
raw body (:mod:`tribe_api.webhook_signature`), checked before anything parses it. Then the
events are stored and applied (:mod:`tribe_api.delivery_events`), in one transaction. SendGrid
retries any batch that does not get a 2xx, so a batch posted again is answered 200 and stores
nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import falcon
from prometheus_client import CollectorRegistry, Counter
from spectree import Response

from tribe_api import delivery_events, twilio_events, unsubscribing
from tribe_api.errors import Code
from tribe_api.schemas.errors import Error
from tribe_api.schemas.events import WebhookReceived
from tribe_api.spec import spec
from tribe_api.twilio_events import TwilioSignature
from tribe_api.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventWebhookVerifier

#: What the webhook answers Twilio: an empty TwiML document (no automatic reply to an inbound
#: message; Twilio's Advanced Opt-Out sends its own confirmation of a STOP).
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_FORM = falcon.media.URLEncodedFormHandler()


class EmailEventMetrics:
    """``tribe_email_events_total{event}``: new provider events by type (a batch posted again
    counts nothing)."""

    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(
            "tribe_email_events",
            "Email provider events received (new ones), by event type",
            ["event"],
            registry=registry,
        )

    def count(self, by_event: dict[str, int]) -> None:
        for event, count in by_event.items():
            self.events.labels(event=event).inc(count)


class SendGridWebhookResource:
    auth_required = False

    def __init__(
        self,
        verifier: EventWebhookVerifier | None,
        metrics: EmailEventMetrics,
        clock: Callable[[], datetime],
    ):
        self._verifier = verifier
        self._metrics = metrics
        self._clock = clock

    @spec.validate(
        resp=Response(
            HTTP_200=WebhookReceived,
            HTTP_400=Error,
            HTTP_401=Error,
            HTTP_413=Error,
            HTTP_503=Error,
        ),
        tags=["webhooks"],
        security={},
    )
    def on_post(self, req, resp):
        """SendGrid's event webhook (signed): a JSON list of events, each stored once (by its
        ``sg_event_id``) and applied to its job (matched by the ``job_id`` of the email's
        ``custom_args``) and its address. Headers ``X-Twilio-Email-Event-Webhook-Signature``
        and ``-Timestamp`` are required; 401 ``missing_signature``, ``invalid_signature`` or
        ``stale_batch`` otherwise, 400 ``malformed_batch`` for a body that is not a list of
        events, and nothing is stored."""
        if self._verifier is None:
            raise falcon.HTTPServiceUnavailable(
                title="Webhook not configured",
                description="SENDGRID_WEBHOOK_PUBLIC_KEY is not set: no batch can be verified",
                code=Code.WEBHOOK_NOT_CONFIGURED,
            )
        body = req.bounded_stream.read()
        self._verifier.verify(
            body, req.get_header(SIGNATURE_HEADER), req.get_header(TIMESTAMP_HEADER)
        )
        now = self._clock()
        rows = delivery_events.parse_batch(body, now)
        recorded = delivery_events.record_batch(
            rows, now, on_group_event=unsubscribing.on_provider_group_event
        )
        self._metrics.count(recorded.by_event)
        resp.media = {
            "received": recorded.received,
            "stored": recorded.stored,
            "duplicates": recorded.received - recorded.stored,
        }


class SmsEventMetrics:
    """``tribe_sms_events_total{event}``: new Twilio callbacks by status, inbound messages,
    STOPs and STARTs (a replayed request counts nothing)."""

    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(
            "tribe_sms_events",
            "SMS/WhatsApp provider callbacks and inbound messages received (new ones), by event",
            ["event"],
            registry=registry,
        )

    def count(self, event: str) -> None:
        self.events.labels(event=event).inc()


class TwilioWebhookResource:
    auth_required = False

    def __init__(
        self,
        signature: TwilioSignature | None,
        metrics: SmsEventMetrics,
        clock: Callable[[], datetime],
    ):
        self._signature = signature
        self._metrics = metrics
        self._clock = clock

    @spec.validate(
        resp=Response(
            HTTP_200=None, HTTP_400=Error, HTTP_401=Error, HTTP_413=Error, HTTP_415=Error,
            HTTP_503=Error,
        ),
        tags=["webhooks"],
        security={},
    )  # fmt: skip
    def on_post(self, req, resp):
        """Twilio's webhook (signed with ``X-Twilio-Signature``), form-encoded as Twilio posts:
        a message's status callback (``MessageStatus``; the job named by the URL's
        ``job_id``) gives the job its delivery outcome; an inbound message (``From``,
        ``Body``) opens WhatsApp's 24-hour window, and ``STOP`` / ``START`` suppress and
        restore the number. Each request is applied once (a replay is answered 200 and
        changes nothing). 401 ``missing_signature`` or ``invalid_signature`` (another URL,
        another body, another token), 400 ``malformed_batch``, 503
        ``webhook_not_configured`` without ``TWILIO_AUTH_TOKEN``. Answers empty TwiML."""
        if self._signature is None:
            raise falcon.HTTPServiceUnavailable(
                title="Webhook not configured",
                description="TWILIO_AUTH_TOKEN is not set: no request can be verified",
                code=Code.WEBHOOK_NOT_CONFIGURED,
            )
        if not req.get_header(twilio_events.SIGNATURE_HEADER):
            raise twilio_events.unsigned(
                f"{twilio_events.SIGNATURE_HEADER} is missing", Code.MISSING_SIGNATURE
            )
        if not (req.content_type or "").startswith(falcon.MEDIA_URLENCODED):
            raise falcon.HTTPUnsupportedMediaType(
                title="Unsupported media type",
                description="Twilio posts application/x-www-form-urlencoded",
                code=Code.UNSUPPORTED_MEDIA_TYPE,
            )
        form = _FORM.deserialize(req.bounded_stream, req.content_type, req.content_length)
        form = {k: v if isinstance(v, str) else v[-1] for k, v in form.items()}
        self._signature.verify(req, form)
        received = twilio_events.record(form, req.get_param("job_id"), self._clock())
        if received.new:
            self._metrics.count(received.event)
        resp.content_type = "text/xml"
        resp.text = EMPTY_TWIML
