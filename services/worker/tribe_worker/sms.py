"""The SMS/WhatsApp provider interface and its default: not configured, so jobs fail clearly."""

from __future__ import annotations

from typing import Protocol

from tribe_worker.emails.providers import DeliveryError


class SmsProvider(Protocol):
    name: str

    def send(self, channel: str, phone: str, text: str) -> str:
        """Deliver ``text`` to ``phone`` over ``channel`` (sms, whatsapp); return a message id."""
        ...


class DisabledSmsProvider:
    """Fails every message permanently until a real provider is configured."""

    name = "disabled"

    def send(self, channel: str, phone: str, text: str) -> str:
        raise DeliveryError("SMS delivery is not configured", transient=False)
