"""A local SMTP relay (aiosmtpd, the maintained successor of the standard library's ``smtpd``),
so the SMTP provider's real :mod:`smtplib` session runs in tests.

It keeps every message it accepts, parsed (``fake.messages``), and can be told to answer a
recipient or the message with an error reply (``fake.rcpt_reply = "550 5.1.1 No such user"``),
to want a login (``credentials``) and to offer STARTTLS with a server ``tls`` context. Start it
with ``FakeSmtp().start()``; ``host`` and ``port`` say where it listens.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.fakes.redis_server import free_port


class _Handler:
    def __init__(self, fake: FakeSmtp):
        self._fake = fake

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self._fake.rcpt_reply is not None:
            return self._fake.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self._fake.data_reply is not None:
            return self._fake.data_reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._fake.lock:
            self._fake.messages.append(message)
            self._fake.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class FakeSmtp:
    def __init__(self, *, credentials: tuple[str, str] | None = None, tls=None):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: Replies to give instead of accepting a recipient, or the message.
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.lock = threading.Lock()
        self._credentials = credentials
        options = {}
        if credentials is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=tls is not None,
            )
        if tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        given = (
            (auth_data.login.decode(), auth_data.password.decode())
            if isinstance(auth_data, LoginPassword)
            else None
        )
        # handled=False: aiosmtpd answers a failure with its 535 (else it answers nothing).
        return AuthResult(success=given == self._credentials, handled=False)

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def text_of(self, message: EmailMessage) -> str:
        return message.get_body(("plain",)).get_content()


@pytest.fixture
def smtp_relay() -> Iterator[FakeSmtp]:
    """A plain local relay (no STARTTLS, no login)."""
    fake = FakeSmtp().start()
    yield fake
    fake.stop()
