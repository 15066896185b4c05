"""The email provider interface and its development implementation.

A provider sends one rendered email to one or more addressees (each tracked by its job id) in a
single call, and either returns the provider's message id or raises :class:`DeliveryError`
saying whether the failure is worth retrying.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from tribe_shared.emails.render import RenderedEmail

log = logging.getLogger(__name__)

__all__ = [
    "Addressee",
    "DeliveryError",
    "EmailProvider",
    "FileEmailProvider",
    "RenderedEmail",
    "Sender",
]


@dataclass(frozen=True)
class Sender:
    """Who an email is from: an address, and the name mail programs show for it."""

    email: str
    name: str | None = None

    def named(self, name: str | None) -> Sender:
        """The same address under another name (None: keep this one's)."""
        return Sender(self.email, name or self.name)


@dataclass(frozen=True)
class Addressee:
    email: str
    job_id: uuid.UUID
    #: Headers of this addressee's copy alone (``List-Unsubscribe`` carries their own link).
    headers: tuple[tuple[str, str], ...] = ()


class DeliveryError(Exception):
    """The provider did not accept the email.

    ``transient`` failures (timeouts, 429, 5xx) are retried; the others fail the job at once.
    ``retry_after`` is the provider's own wait in seconds, when it gave one.
    ``refused``: the provider refused our credentials (401/403). Nothing can be sent until
    someone fixes the key; it is no fault of the email's, so its job is not failed.
    """

    def __init__(
        self,
        reason: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        refused: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after
        self.refused = refused


class EmailProvider(Protocol):
    #: Written to the delivery log.
    name: str

    def send(self, email: RenderedEmail, sender: Sender, to: list[Addressee]) -> str:
        """Deliver ``email`` to every addressee (each with their own headers); return the
        provider's message id."""
        ...


class FileEmailProvider:
    """Development provider: writes each email as an ``.eml`` file and logs one line."""

    name = "file"

    def __init__(self, outbox: Path):
        self._outbox = outbox

    def send(self, email: RenderedEmail, sender: Sender, to: list[Addressee]) -> str:
        self._outbox.mkdir(parents=True, exist_ok=True)
        message_id = uuid.uuid4().hex
        for addressee in to:
            msg = EmailMessage()
            msg["From"] = formataddr((sender.name, sender.email)) if sender.name else sender.email
            msg["To"] = addressee.email
            msg["Subject"] = email.subject
            msg["Date"] = formatdate(localtime=False)
            msg["Message-ID"] = make_msgid(idstring=message_id, domain="tribe.local")
            msg["X-Tribe-Job-Id"] = str(addressee.job_id)
            for name, value in addressee.headers:
                msg[name] = value
            msg.set_content(email.text)
            msg.add_alternative(email.html, subtype="html")
            path = self._outbox / f"{addressee.job_id}.eml"
            # Written aside, then renamed: whoever watches the outbox never reads half an email.
            partial = path.with_name(f".{path.name}.partial")
            partial.write_bytes(bytes(msg))
            partial.replace(path)
            log.info("email to %s %r written to %s", addressee.email, email.subject, path)
        return message_id
