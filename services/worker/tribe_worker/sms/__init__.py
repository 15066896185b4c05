"""The SMS/WhatsApp provider interface and its default: not configured, so jobs fail clearly.

A provider sends one text message (or, on WhatsApp, one approved template) to one phone
number and returns the provider's message id, or raises
:class:`~tribe_worker.emails.providers.DeliveryError` saying whether the failure may pass.
Twilio is :mod:`tribe_worker.sms.twilio`; what the messages say, and how many segments they
take, is :mod:`tribe_shared.texts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from tribe_worker.emails.providers import DeliveryError


@dataclass(frozen=True)
class WhatsAppTemplate:
    """An approved WhatsApp template: its name (Twilio's Content SID, ``HX…``) and the values of
    its numbered variables. WhatsApp accepts nothing else outside the 24-hour session window."""

    name: str
    variables: dict[str, str]


class SmsProvider(Protocol):
    name: str

    def send(
        self,
        channel: str,
        phone: str,
        text: str,
        *,
        job_id: UUID | None = None,
        template: WhatsAppTemplate | None = None,
    ) -> str:
        """Deliver ``text`` (or ``template``, WhatsApp) to ``phone`` (E.164) over ``channel``
        (sms, whatsapp); return a message id. ``job_id`` lets the provider's status callbacks
        name the job."""
        ...


class DisabledSmsProvider:
    """Fails every message permanently until a real provider is configured."""

    name = "disabled"
    #: Composing checks nothing else (WhatsApp's window) when no provider could send anyway.
    configured = False

    def send(self, channel: str, phone: str, text: str, **_) -> str:
        raise DeliveryError("SMS delivery is not configured", transient=False)
