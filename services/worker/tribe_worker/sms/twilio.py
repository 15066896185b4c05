"""The Twilio provider: SMS and WhatsApp through Twilio's Messages API, with the official client.

Each worker thread keeps its own ``twilio.rest.Client`` (its ``requests`` session keeps the
connection to Twilio alive; sessions are not shared between threads). ``base_url`` replaces
``https://api.twilio.com`` (the client's ``api.base_url``): tests point it at a local fake, and
the client runs unchanged. A message carries a status callback URL naming its job
(``/api/webhooks/twilio?job_id=…``), so Twilio's delivery reports find it.

Twilio's answers, as :class:`~tribe_worker.emails.providers.DeliveryError`:

- **refused** (sending pauses for every worker, as with SendGrid's 401): HTTP 401, or error
  20003 (authentication) or 20005 (account not active): no message is at fault;
- **transient** (retried with backoff; they count towards the SMS circuit breaker): no answer
  (timeout, connection refused or reset), HTTP 429 or 5xx, or errors 20429 (too many requests),
  14107 (rate limit), 30001 (queue overflow), 20500 and 20503 (Twilio's side);
- **permanent** (the job fails at once, with Twilio's code and words): everything else, e.g.
  21211 (invalid ``To``), 21610 (the number replied STOP), 21614 (not a mobile number), 21408
  (region not enabled), 63016 (WhatsApp outside the 24-hour window without a template).
"""

from __future__ import annotations

import json
import logging
import threading
from uuid import UUID

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tribe_shared.contract import DeliveryMethod
from tribe_worker.emails.providers import DeliveryError
from tribe_worker.sms import WhatsAppTemplate

#: Seconds before a request to Twilio is abandoned (connect, and each read).
DEFAULT_TIMEOUT = 10.0
#: Twilio refused our credentials: nothing can be sent until someone fixes them.
REFUSED_CODES = frozenset({20003, 20005})
#: Twilio's own error codes for trouble that passes.
TRANSIENT_CODES = frozenset({20429, 14107, 30001, 20500, 20503})
#: Twilio's words for the codes that need ours too.
EXPLAINED = {
    21610: "the number replied STOP to this sender; it gets nothing until it replies START",
    63016: "WhatsApp refused a free-form message outside the 24-hour window: an approved "
    "template is needed",
}
#: The request log of the official client says whom we text and what: kept out of our logs.
_QUIET = logging.getLogger("tribe_worker.sms.twilio.requests")
_QUIET.setLevel(logging.WARNING)


class TwilioProvider:
    """Sends SMS from ``sms_from`` (or through ``messaging_service_sid``) and WhatsApp from
    ``whatsapp_from``, via Twilio's API at ``base_url``; status callbacks to
    ``status_callback`` (None: Twilio's console setting, if any)."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        sms_from: str | None = None,
        messaging_service_sid: str | None = None,
        whatsapp_from: str | None = None,
        base_url: str = "https://api.twilio.com",
        status_callback: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self._account = (account_sid, auth_token)
        self._sms_from = sms_from
        self._service = messaging_service_sid
        self._whatsapp_from = whatsapp_from
        self._base_url = base_url.rstrip("/")
        self._status_callback = status_callback
        self._timeout = timeout
        self._local = threading.local()

    def send(
        self,
        channel: str,
        phone: str,
        text: str,
        *,
        job_id: UUID | None = None,
        template: WhatsAppTemplate | None = None,
    ) -> str:
        params = self._route(channel, phone)
        if template is not None and channel == DeliveryMethod.WHATSAPP:
            params["content_sid"] = template.name
            params["content_variables"] = json.dumps(template.variables)
        else:
            params["body"] = text
        if self._status_callback and job_id is not None:
            params["status_callback"] = f"{self._status_callback}?job_id={job_id}"
        try:
            message = self._client().messages.create(**params)
        except TwilioRestException as exc:
            raise _from_rest_error(exc) from exc
        except (requests.RequestException, OSError) as exc:
            raise DeliveryError(f"Twilio unreachable: {exc!r}", transient=True) from exc
        except TwilioException as exc:
            raise DeliveryError(f"Twilio client error: {exc}", transient=False) from exc
        return message.sid or ""

    def _route(self, channel: str, phone: str) -> dict:
        """``to`` and the sender for ``channel``; a channel with no sender fails clearly."""
        if channel == DeliveryMethod.WHATSAPP:
            if not self._whatsapp_from:
                raise DeliveryError(
                    "WhatsApp is not configured: TWILIO_WHATSAPP_FROM", transient=False
                )
            return {"to": f"whatsapp:{phone}", "from_": self._whatsapp_from}
        if channel != DeliveryMethod.SMS:
            raise DeliveryError(f"Twilio does not deliver {channel!r}", transient=False)
        if self._service:
            return {"to": phone, "messaging_service_sid": self._service}
        if self._sms_from:
            return {"to": phone, "from_": self._sms_from}
        raise DeliveryError(
            "SMS is not configured: TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID",
            transient=False,
        )

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            http = TwilioHttpClient(timeout=self._timeout, logger=_QUIET)
            client = Client(*self._account, http_client=http)
            client.api.base_url = self._base_url
            self._local.client = client
        return client


def _from_rest_error(exc: TwilioRestException) -> DeliveryError:
    code = exc.code
    said = EXPLAINED.get(code, exc.msg)
    reason = f"Twilio answered {exc.status} (error {code}): {said}"[:1000]
    if exc.status == 401 or code in REFUSED_CODES:
        return DeliveryError(reason, transient=False, refused=True)
    transient = exc.status == 429 or exc.status >= 500 or code in TRANSIENT_CODES
    return DeliveryError(reason, transient=transient)
