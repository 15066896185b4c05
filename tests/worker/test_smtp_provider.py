"""The SMTP provider against a local relay (aiosmtpd): the real smtplib session, STARTTLS and
login, and each kind of failure said as SendGrid's are (transient, permanent, refused)."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator

import pytest
import trustme

from tests.support.fakes.redis_server import free_port
from tests.support.fakes.smtp import FakeSmtp
from tests.support.mail import EMAIL, SENDER, addressees, send_expecting_failure
from tribe_worker.emails.providers import Addressee, Sender
from tribe_worker.emails.smtp import SmtpProvider

CREDENTIALS = ("tribe", "s3cret")


@pytest.fixture
def relay() -> Iterator[FakeSmtp]:
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_relay(ca) -> Iterator[FakeSmtp]:
    """A relay that wants STARTTLS, then a login."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    fake = FakeSmtp(credentials=CREDENTIALS, tls=server).start()
    yield fake
    fake.stop()


def plain(relay: FakeSmtp, **options) -> SmtpProvider:
    return SmtpProvider(relay.host, relay.port, starttls=False, timeout=5, **options)


def test_each_addressee_gets_their_own_message_with_their_headers(relay):
    # Given two addressees, one with an unsubscribe header of their own
    first, second = addressees(2)
    first = Addressee(first.email, first.job_id, (("List-Unsubscribe", "<https://u/1>"),))
    sender = Sender("no-reply@tribe.local", "The Smiths on Tribe")

    # When the provider sends one email to both
    message_id = plain(relay).send(EMAIL, sender, [first, second])

    # Then the relay got two messages, each to its own addressee, in both parts
    one, two = relay.messages
    assert [m["To"] for m in (one, two)] == [first.email, second.email]
    assert [to for _, to in relay.envelopes] == [[first.email], [second.email]]
    assert one["From"] == "The Smiths on Tribe <no-reply@tribe.local>"
    assert one["Subject"] == EMAIL.subject
    assert one["X-Tribe-Job-Id"] == str(first.job_id)
    assert one["List-Unsubscribe"] == "<https://u/1>"
    assert "List-Unsubscribe" not in two
    assert relay.text_of(one).strip() == EMAIL.text
    assert one.get_body(("html",)).get_content().strip() == EMAIL.html
    # And the message id is the first message's
    assert one["Message-ID"] == f"<{message_id}>"


def test_starttls_and_a_login_before_the_email(tls_relay, ca):
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    provider = SmtpProvider(
        tls_relay.host,
        tls_relay.port,
        username=CREDENTIALS[0],
        password=CREDENTIALS[1],
        timeout=5,
        tls=client_tls,
    )

    provider.send(EMAIL, SENDER, addressees(1))

    assert len(tls_relay.messages) == 1


def test_wrong_credentials_are_refused_and_pause_sending(tls_relay, ca):
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    provider = SmtpProvider(
        tls_relay.host, tls_relay.port, username="tribe", password="wrong", timeout=5,
        tls=client_tls,
    )  # fmt: skip

    error = send_expecting_failure(provider)

    assert error.refused and not error.transient
    assert "535" in error.reason
    assert tls_relay.messages == []


def test_a_relay_without_starttls_when_it_is_required_is_refused(relay):
    provider = SmtpProvider(relay.host, relay.port, starttls=True, timeout=5)

    error = send_expecting_failure(provider)

    assert error.refused
    assert relay.messages == []


def test_a_4xx_reply_is_transient_and_a_5xx_one_permanent(relay):
    relay.data_reply = "451 4.3.0 Try again later"
    later = send_expecting_failure(plain(relay))
    assert later.transient and not later.refused
    assert "451" in later.reason

    relay.data_reply = None
    relay.rcpt_reply = "550 5.1.1 No such user"
    never = send_expecting_failure(plain(relay))
    assert not never.transient and not never.refused
    assert "550" in never.reason


def test_a_relay_nobody_answers_on_is_transient():
    provider = SmtpProvider("127.0.0.1", free_port(), starttls=False, timeout=2)

    error = provider_error = send_expecting_failure(provider)

    assert error.transient and not provider_error.refused
    assert "unreachable" in error.reason


def test_an_addressee_job_id_names_the_message(relay):
    job_id = uuid.uuid4()
    plain(relay).send(EMAIL, SENDER, [Addressee("nana@example.com", job_id)])
    (message,) = relay.messages
    assert str(job_id) in message["Message-ID"]
