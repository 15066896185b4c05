"""The SMTP provider: any relay (SES, Postmark, Mailgun, a company server) through the standard
library's :mod:`smtplib`.

Chosen with ``EMAIL_PROVIDER=smtp``, or used by failover while SendGrid's circuit is open
(``EMAIL_FAILOVER_TO_SMTP``, :mod:`tribe_worker.delivery`). Each call opens one SMTP session
(STARTTLS when configured, then AUTH when a username is), sends one message per addressee (each
with its own ``To`` and headers: ``List-Unsubscribe`` is theirs, and a relay's DKIM signature
covers it) and closes it. smtplib over a worker thread is enough: a call is one short session,
and the worker's threads are what run calls at once (aiosmtplib would need an event loop in every
thread for nothing).

Failures, as :class:`DeliveryError` says them, with the same meaning as SendGrid's:

- **transient**: the relay cannot be reached or hangs up, a timeout, any 4xx reply (greylisting,
  "try again later", a full mailbox queue);
- **permanent**: a 5xx reply to the sender, a recipient or the message (an address that does not
  exist, content refused);
- **refused**: the relay refuses our credentials (535 and other AUTH failures) or cannot give the
  STARTTLS we require: no email can go until someone fixes the configuration, so sending pauses
  for every worker, as it does for a refused SendGrid key.

An SMTP relay has no idempotency key either: a session that breaks after some addressees of a
batch were accepted is retried whole, so those may get the email twice (only ad-hoc bulk emails
travel in batches).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from tribe_worker.emails.providers import Addressee, DeliveryError, RenderedEmail, Sender

#: Seconds before connecting, or any one reply, is given up.
DEFAULT_TIMEOUT = 10.0


class SmtpProvider:
    """Sends through the SMTP relay at ``host``:``port``.

    ``tls`` is the context that checks the relay's certificate on STARTTLS (default: the
    system's CAs); ``username`` and ``password`` log in, when given.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ):
        self._host = host
        self._port = port
        self._login = (username, password) if username else None
        self._starttls = starttls
        self._timeout = timeout
        self._tls = tls

    def send(self, email: RenderedEmail, sender: Sender, to: list[Addressee]) -> str:
        if not to:
            raise ValueError("an SMTP send needs at least one addressee")
        domain = sender.email.rpartition("@")[2] or "tribe.local"
        messages = [_message(email, sender, addressee, domain) for addressee in to]
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as session:
                self._open(session)
                for message in messages:
                    session.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _replied(code, reply, "the recipient was refused") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP relay refused our credentials: {exc.smtp_code} {_text(exc.smtp_error)}",
                transient=False,
                refused=True,
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"SMTP relay cannot do what we require: {exc}", transient=False, refused=True
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _replied(exc.smtp_code, exc.smtp_error, "the relay refused the email") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Cannot connect, hung up, timed out (TimeoutError is an OSError), TLS failed.
            raise DeliveryError(
                f"SMTP relay {self._host}:{self._port} unreachable: {type(exc).__name__}: {exc}",
                transient=True,
            ) from exc
        # The first message's id: the job's own, when it is alone (a batch's jobs share one).
        return messages[0]["Message-ID"].strip("<>")

    def _open(self, session: smtplib.SMTP) -> None:
        session.ehlo()
        if self._starttls:
            if not session.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the relay does not offer STARTTLS")
            session.starttls(context=self._tls or ssl.create_default_context())
            session.ehlo()
        if self._login is not None:
            session.login(*self._login)


def _message(
    email: RenderedEmail, sender: Sender, addressee: Addressee, domain: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((sender.name, sender.email)) if sender.name else sender.email
    message["To"] = addressee.email
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=str(addressee.job_id), domain=domain)
    message["X-Tribe-Job-Id"] = str(addressee.job_id)
    for name, value in addressee.headers:
        message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def _replied(code: int, reply: bytes | str, what: str) -> DeliveryError:
    """A relay's error reply: 4xx is worth another try, 5xx is not."""
    return DeliveryError(f"{what}: {code} {_text(reply)}", transient=400 <= code < 500)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
