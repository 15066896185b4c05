"""Every email and SMS provider honours its interface (``tribe_worker.emails.providers``,
``tribe_worker.sms``): a non-empty ``name`` for the delivery log; ``send`` returns the provider's
message id (a non-empty string) when it delivers, to one addressee or many (email); and whatever
goes wrong on the provider's side comes out as a :class:`DeliveryError` saying whether it is
``transient``, never as another exception (the delivery loop records only what it can read).

A provider is described once (:class:`Provider`): how to build it working, which addresses a
send reached, and each way its side can fail with the ``transient`` that failure must carry.
Adding a provider is one entry in :data:`EMAIL_PROVIDERS` or :data:`SMS_PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser

import pytest

from tests.support.fakes import twilio as fake_twilio
from tests.support.fakes.redis_server import free_port
from tests.support.fakes.sendgrid import API_KEY, Reply
from tests.support.fakes.smtp import smtp_relay  # noqa: F401 - a fixture
from tests.support.mail import EMAIL, SENDER, addressees
from tribe_shared.contract import MAX_PERSONALIZATIONS
from tribe_worker.emails.providers import DeliveryError, FileEmailProvider
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.emails.smtp import SmtpProvider
from tribe_worker.sms import DisabledSmsProvider
from tribe_worker.sms.twilio import TwilioProvider

#: Builds a provider (or reads what it did) from the test's fixtures.
Build = Callable[[pytest.FixtureRequest], object]


@dataclass(frozen=True)
class Failure:
    """One way the provider's side fails, and the ``transient`` its error must say."""

    way: str
    build: Build
    transient: bool
    #: A failure the provider does not yet turn into a DeliveryError: why, until it does.
    known_gap: str | None = None


@dataclass(frozen=True)
class Provider:
    """A provider as these tests meet it."""

    #: The provider, working (None: it never delivers, as the disabled SMS provider).
    working: Build | None
    #: The addresses the sends so far reached (email), in any order.
    reached: Callable[[pytest.FixtureRequest], list[str]] = lambda request: []
    failures: tuple[Failure, ...] = field(default_factory=tuple)


# --- SendGrid, against the fake ----------------------------------------------------------------


def _sendgrid(reply: Reply | None = None, *, timeout: float = 2.0) -> Build:
    """A SendGrid provider on the fake, which answers ``reply`` to everything."""

    def build(request: pytest.FixtureRequest) -> SendGridProvider:
        fake = request.getfixturevalue("sendgrid")
        if reply is not None:
            fake.default = reply
        return SendGridProvider(API_KEY, fake.url, timeout=timeout)

    return build


def _sendgrid_unreachable(request: pytest.FixtureRequest) -> SendGridProvider:
    return SendGridProvider(API_KEY, f"http://127.0.0.1:{free_port()}", timeout=2)


def _sendgrid_reached(request: pytest.FixtureRequest) -> list[str]:
    fake = request.getfixturevalue("sendgrid")
    return [address for r in fake.requests if r.message_id for address in r.recipients]


def _errors(message: str) -> dict:
    return {"errors": [{"message": message}]}


SENDGRID = Provider(
    working=_sendgrid(),
    reached=_sendgrid_reached,
    failures=(
        Failure("500", _sendgrid(Reply(500, body=_errors("Internal Server Error"))), True),
        Failure("503", _sendgrid(Reply(503)), True),
        Failure("429", _sendgrid(Reply(429, body=_errors("too many requests"))), True),
        Failure("400", _sendgrid(Reply(400, body=_errors("invalid address"))), False),
        Failure("413", _sendgrid(Reply(413)), False),
        Failure("401", _sendgrid(Reply(401, body=_errors("bad key"))), False),
        Failure("slower than the timeout", _sendgrid(Reply(delay=1), timeout=0.2), True),
        Failure("connection dropped", _sendgrid(Reply(drop=True)), True),
        Failure("unreachable", _sendgrid_unreachable, True),
    ),
)


# --- SMTP, against a local relay ----------------------------------------------------------------


def _smtp(data_reply: str | None = None, rcpt_reply: str | None = None) -> Build:
    def build(request: pytest.FixtureRequest) -> SmtpProvider:
        relay = request.getfixturevalue("smtp_relay")
        relay.data_reply, relay.rcpt_reply = data_reply, rcpt_reply
        return SmtpProvider(relay.host, relay.port, starttls=False, timeout=5)

    return build


def _smtp_reached(request: pytest.FixtureRequest) -> list[str]:
    return [to for _, tos in request.getfixturevalue("smtp_relay").envelopes for to in tos]


SMTP = Provider(
    working=_smtp(),
    reached=_smtp_reached,
    failures=(
        Failure("451", _smtp(data_reply="451 4.3.0 Try again later"), True),
        Failure("550 recipient", _smtp(rcpt_reply="550 5.1.1 No such user"), False),
        Failure("554 message", _smtp(data_reply="554 5.6.0 Content refused"), False),
        Failure(
            "unreachable",
            lambda request: SmtpProvider("127.0.0.1", free_port(), starttls=False, timeout=2),
            True,
        ),
    ),
)


# --- the file provider (development) -----------------------------------------------------------


def _file(request: pytest.FixtureRequest) -> FileEmailProvider:
    return FileEmailProvider(request.getfixturevalue("tmp_path") / "outbox")


def _file_reached(request: pytest.FixtureRequest) -> list[str]:
    outbox = request.getfixturevalue("tmp_path") / "outbox"
    parser = BytesParser()
    return [parser.parsebytes(path.read_bytes())["To"] for path in outbox.glob("*.eml")]


def _file_outbox_blocked(request: pytest.FixtureRequest) -> FileEmailProvider:
    """The outbox's path is taken by a file: no folder can be made there (even as root)."""
    blocked = request.getfixturevalue("tmp_path") / "outbox"
    blocked.write_text("not a folder")
    return FileEmailProvider(blocked)


FILE = Provider(
    working=_file,
    reached=_file_reached,
    failures=(
        Failure(
            "outbox cannot be written",
            _file_outbox_blocked,
            True,
            known_gap="FileEmailProvider lets the OSError out: its job stays processing until "
            "the reaper's lease ends",
        ),
    ),
)


# --- SMS ---------------------------------------------------------------------------------------

DISABLED_SMS = Provider(
    working=None,
    failures=(Failure("not configured", lambda request: DisabledSmsProvider(), False),),
)


def _twilio(reply: fake_twilio.Reply | None = None, *, base_url: str | None = None) -> Build:
    """A Twilio provider on the fake, which answers ``reply`` to everything."""

    def build(request: pytest.FixtureRequest) -> TwilioProvider:
        fake = request.getfixturevalue("twilio")
        if reply is not None:
            fake.default = reply
        return TwilioProvider(
            fake_twilio.ACCOUNT_SID,
            fake_twilio.AUTH_TOKEN,
            sms_from=fake_twilio.SMS_FROM,
            whatsapp_from=fake_twilio.WHATSAPP_FROM,
            base_url=base_url or fake.url,
            timeout=2,
        )

    return build


TWILIO = Provider(
    working=_twilio(),
    failures=(
        Failure("invalid number", _twilio(fake_twilio.error(400, 21211)), False),
        Failure("throttled", _twilio(fake_twilio.error(429, 20429)), True),
        Failure("server error", _twilio(fake_twilio.error(500, 20500)), True),
        Failure("unreachable", _twilio(base_url=f"http://127.0.0.1:{free_port()}"), True),
    ),
)


#: Every email provider: one entry each.
EMAIL_PROVIDERS = [
    pytest.param(SENDGRID, id="sendgrid"),
    pytest.param(FILE, id="file"),
    pytest.param(SMTP, id="smtp"),
]
#: Every SMS provider: one entry each.
SMS_PROVIDERS = [
    pytest.param(DISABLED_SMS, id="disabled"),
    pytest.param(TWILIO, id="twilio"),
]


def working(providers: list) -> list:
    """The providers that can deliver."""
    return [param for param in providers if param.values[0].working is not None]


def every_failure(providers: list) -> list:
    """Each provider with each way its side fails."""
    return [
        pytest.param(
            failure,
            id=f"{param.id}-{failure.way}",
            marks=[pytest.mark.xfail(strict=True, reason=failure.known_gap)]
            if failure.known_gap
            else [],
        )
        for param in providers
        for failure in param.values[0].failures
    ]


def a_provider(build: Build, request: pytest.FixtureRequest):
    provider = build(request)
    assert isinstance(provider.name, str) and provider.name.strip(), provider.name
    return provider


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", EMAIL_PROVIDERS)
def test_an_email_provider_has_a_name_for_the_delivery_log(subject, request):
    for build in [subject.working, *(failure.build for failure in subject.failures)]:
        if build is not None:
            a_provider(build, request)


@pytest.mark.parametrize("count", [1, 3, MAX_PERSONALIZATIONS], ids=["one", "three", "most"])
@pytest.mark.parametrize("subject", working(EMAIL_PROVIDERS))
def test_an_email_provider_returns_a_message_id_and_reaches_every_addressee(
    subject, count, request
):
    # Given a working provider
    provider = a_provider(subject.working, request)
    to = addressees(count)

    # When it sends one email to one addressee or many
    message_id = provider.send(EMAIL, SENDER, to)

    # Then it answers the provider's message id, and the email reached each of them once
    assert isinstance(message_id, str) and message_id
    assert sorted(subject.reached(request)) == sorted(a.email for a in to)


@pytest.mark.parametrize("failure", every_failure(EMAIL_PROVIDERS))
def test_an_email_provider_side_failure_is_a_delivery_error_saying_if_it_is_transient(
    failure, request
):
    # Given a provider whose side fails in this way
    provider = a_provider(failure.build, request)

    # When an email is sent to one addressee or several, Then it raises a DeliveryError (and
    # nothing else), saying whether the failure may pass
    for count in (1, 3):
        with pytest.raises(DeliveryError) as raised:
            provider.send(EMAIL, SENDER, addressees(count))
        assert raised.value.transient is failure.transient
        assert raised.value.reason


# --- SMS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", SMS_PROVIDERS)
def test_an_sms_provider_has_a_name_for_the_delivery_log(subject, request):
    for build in [subject.working, *(failure.build for failure in subject.failures)]:
        if build is not None:
            a_provider(build, request)


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("subject", working(SMS_PROVIDERS))
def test_an_sms_provider_returns_a_message_id(subject, channel, request):
    provider = a_provider(subject.working, request)

    message_id = provider.send(channel, "+15550100", "Lily walked today")

    assert isinstance(message_id, str) and message_id


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
@pytest.mark.parametrize("failure", every_failure(SMS_PROVIDERS))
def test_an_sms_provider_side_failure_is_a_delivery_error_saying_if_it_is_transient(
    failure, channel, request
):
    provider = a_provider(failure.build, request)

    with pytest.raises(DeliveryError) as raised:
        provider.send(channel, "+15550100", "Lily walked today")

    assert raised.value.transient is failure.transient
    assert raised.value.reason
