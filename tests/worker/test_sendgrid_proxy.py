"""The SendGrid provider behind an HTTP proxy, as the official client would go through one.

An https SendGrid (the fake, with a certificate of a test CA) through a local forward proxy that
speaks CONNECT and absolute-URL requests; the proxy variables are handed to the provider as a
mapping, never set in ``os.environ``. The one log line that names the proxy in use.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import pytest
import trustme

from tests.support.fakes.proxy import PASSWORD, USER, basic
from tests.support.fakes.redis_server import free_port
from tests.support.fakes.sendgrid import API_KEY, FakeSendGrid, Reply
from tests.support.mail import EMAIL, SENDER, addressees, send_expecting_failure
from tribe_worker.emails.sendgrid import SendGridProvider


@pytest.fixture(scope="module")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_sendgrid(test_ca) -> Iterator[FakeSendGrid]:
    """The fake SendGrid over HTTPS, with a certificate for 127.0.0.1 and localhost."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    fake = FakeSendGrid(tls=server).start()
    yield fake
    fake.stop()


@pytest.fixture
def trusting(test_ca) -> ssl.SSLContext:
    """A client context checking certificates against the test CA (as ours do against real CAs)."""
    context = ssl.create_default_context()
    test_ca.configure_trust(context)
    return context


# --- https: a CONNECT tunnel -------------------------------------------------------------


def test_with_https_proxy_set_sendgrid_is_reached_through_a_connect_tunnel(
    https_sendgrid, trusting, proxy
):
    # Given HTTPS_PROXY naming the proxy
    provider = SendGridProvider(
        API_KEY, https_sendgrid.url, environ={"HTTPS_PROXY": proxy.url}, tls=trusting, timeout=2
    )

    # When an email is sent
    message_id = provider.send(EMAIL, SENDER, addressees())

    # Then it went through one tunnel to SendGrid's host, and SendGrid accepted it
    (tunnel,) = proxy.tunnels
    assert tunnel.target == https_sendgrid.url.removeprefix("https://")
    (request,) = https_sendgrid.wait_for_requests(1)
    assert message_id == request.message_id
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert proxy.forwarded == []


def test_consecutive_sends_through_the_proxy_reuse_one_kept_alive_tunnel(
    https_sendgrid, trusting, proxy
):
    # Given a provider going through the proxy
    provider = SendGridProvider(
        API_KEY, https_sendgrid.url, environ={"https_proxy": proxy.url}, tls=trusting, timeout=2
    )

    # When one thread sends three emails, one after the other
    for _ in range(3):
        provider.send(EMAIL, SENDER, addressees())

    # Then all three went through one connection to the proxy and one tunnel
    requests = https_sendgrid.wait_for_requests(3)
    assert proxy.connections == 1
    assert len(proxy.tunnels) == 1
    assert len({r.connection for r in requests}) == 1


def test_a_tunnel_closed_while_idle_is_replaced_by_a_new_one_without_a_failure(
    https_sendgrid, trusting, proxy
):
    # Given a tunnel that SendGrid closed after answering (so the proxy closed it too)
    provider = SendGridProvider(
        API_KEY, https_sendgrid.url, environ={"HTTPS_PROXY": proxy.url}, tls=trusting, timeout=2
    )
    https_sendgrid.script(Reply(close=True))
    provider.send(EMAIL, SENDER, addressees())
    https_sendgrid.wait_for_closed_connections(1)
    proxy.wait_until(lambda p: p.closed_tunnels == 1)

    # When the same thread sends again
    message_id = provider.send(EMAIL, SENDER, addressees())

    # Then it goes out through a new tunnel, and is accepted
    _, second = https_sendgrid.wait_for_requests(2)
    assert second.message_id == message_id
    assert len(proxy.tunnels) == 2


def test_proxy_credentials_go_on_the_connect_only_never_to_sendgrid(
    https_sendgrid, trusting, guarded_proxy
):
    # Given a proxy URL with a user and a password
    environ = {"HTTPS_PROXY": f"http://{USER}:{PASSWORD}@{guarded_proxy.address}"}
    provider = SendGridProvider(API_KEY, https_sendgrid.url, environ=environ, tls=trusting)

    # When an email is sent
    provider.send(EMAIL, SENDER, addressees())

    # Then the proxy saw them as Basic credentials on the CONNECT; SendGrid never did
    (tunnel,) = guarded_proxy.tunnels
    assert tunnel.headers["Proxy-Authorization"] == basic(USER, PASSWORD)
    (request,) = https_sendgrid.wait_for_requests(1)
    assert not {name.lower() for name in request.headers} & {"proxy-authorization"}


@pytest.mark.parametrize(
    "credentials", ["", f"{USER}:wrong-password@"], ids=["none", "wrong-password"]
)
def test_bad_proxy_credentials_pause_sending_like_a_refused_api_key(
    https_sendgrid, trusting, guarded_proxy, credentials
):
    # Given a proxy that refuses our credentials (407)
    environ = {"HTTPS_PROXY": f"http://{credentials}{guarded_proxy.address}"}
    provider = SendGridProvider(API_KEY, https_sendgrid.url, environ=environ, tls=trusting)

    # When an email is sent
    error = send_expecting_failure(provider)

    # Then the failure is "refused": nothing can go out until the settings are fixed, and it
    # says so, naming the variable but never the password
    assert error.refused is True
    assert error.transient is False
    assert "407" in error.reason
    assert "HTTPS_PROXY" in error.reason
    assert "wrong-password" not in error.reason
    assert guarded_proxy.refused == 1
    assert https_sendgrid.requests == []


def test_a_proxy_that_is_down_is_a_transient_failure(https_sendgrid, trusting):
    # Given HTTPS_PROXY naming a port nobody listens on
    down = f"127.0.0.1:{free_port()}"
    provider = SendGridProvider(
        API_KEY, https_sendgrid.url, environ={"HTTPS_PROXY": f"http://{down}"}, tls=trusting
    )

    # When an email is sent, Then the failure is transient and names the proxy
    error = send_expecting_failure(provider)
    assert error.transient is True
    assert error.refused is False
    assert "unreachable" in error.reason
    assert down in error.reason


def test_a_proxy_that_cannot_reach_sendgrid_is_a_transient_failure(trusting, proxy):
    # Given a proxy whose CONNECT to SendGrid's host fails (it answers 502)
    provider = SendGridProvider(
        API_KEY,
        f"https://127.0.0.1:{free_port()}",
        environ={"HTTPS_PROXY": proxy.url},
        tls=trusting,
    )

    # When an email is sent, Then the failure is transient, with the proxy's answer
    error = send_expecting_failure(provider)
    assert error.transient is True
    assert error.refused is False
    assert "502" in error.reason


def test_sendgrids_certificate_is_still_checked_inside_the_tunnel(https_sendgrid, proxy):
    # Given a provider that trusts only the system's CAs, not the test CA of the fake
    provider = SendGridProvider(API_KEY, https_sendgrid.url, environ={"HTTPS_PROXY": proxy.url})

    # When an email is sent, Then the TLS handshake with the fake fails: nothing is sent
    error = send_expecting_failure(provider)
    assert "CERTIFICATE_VERIFY_FAILED" in error.reason
    assert len(proxy.tunnels) == 1
    assert https_sendgrid.requests == []


# --- NO_PROXY ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "no_proxy"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("localhost", "*"),
        ("localhost", "example.com, .localhost"),
        ("127.0.0.1", "example.com,127.0.0.1:{port}"),
    ],
)
def test_a_host_listed_in_no_proxy_is_reached_directly(
    https_sendgrid, trusting, proxy, host, no_proxy
):
    # Given a proxy, and NO_PROXY listing SendGrid's host
    port = https_sendgrid.url.rsplit(":", 1)[1]
    environ = {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy.format(port=port)}
    provider = SendGridProvider(API_KEY, f"https://{host}:{port}", environ=environ, tls=trusting)

    # When an email is sent
    message_id = provider.send(EMAIL, SENDER, addressees())

    # Then it reached SendGrid without the proxy
    (request,) = https_sendgrid.wait_for_requests(1)
    assert message_id == request.message_id
    assert proxy.connections == 0


def test_a_no_proxy_naming_another_host_still_uses_the_proxy(https_sendgrid, trusting, proxy):
    environ = {"HTTPS_PROXY": proxy.url, "no_proxy": "localhost,.example.com"}
    provider = SendGridProvider(API_KEY, https_sendgrid.url, environ=environ, tls=trusting)

    provider.send(EMAIL, SENDER, addressees())

    assert len(proxy.tunnels) == 1


# --- http (tests): absolute-URL requests, as urllib sends them ---------------------------


def test_an_http_host_goes_through_http_proxy_as_absolute_url_requests_on_one_connection(
    sendgrid, proxy
):
    # Given HTTP_PROXY and an http SendGrid host
    provider = SendGridProvider(API_KEY, sendgrid.url, environ={"HTTP_PROXY": proxy.url})

    # When three emails are sent, one after the other
    for _ in range(3):
        provider.send(EMAIL, SENDER, addressees())

    # Then the proxy forwarded three requests naming the whole URL, all on one kept-alive
    # connection, and no tunnel was opened
    assert [f.url for f in proxy.forwarded] == [f"{sendgrid.url}/v3/mail/send"] * 3
    assert proxy.connections == 1
    assert proxy.tunnels == []
    assert len(sendgrid.wait_for_requests(3)) == 3


def test_an_http_host_carries_the_proxy_credentials_on_each_request(sendgrid, guarded_proxy):
    environ = {"HTTP_PROXY": f"http://{USER}:{PASSWORD}@{guarded_proxy.address}"}
    provider = SendGridProvider(API_KEY, sendgrid.url, environ=environ)

    provider.send(EMAIL, SENDER, addressees())

    (forwarded,) = guarded_proxy.forwarded
    assert forwarded.headers["Proxy-Authorization"] == basic(USER, PASSWORD)
    (request,) = sendgrid.wait_for_requests(1)
    assert "Proxy-Authorization" not in request.headers


def test_bad_proxy_credentials_for_an_http_host_are_refused_too(sendgrid, guarded_proxy):
    environ = {"http_proxy": f"http://{USER}:wrong-password@{guarded_proxy.address}"}
    provider = SendGridProvider(API_KEY, sendgrid.url, environ=environ)

    error = send_expecting_failure(provider)

    assert error.refused is True
    assert "407" in error.reason
    assert "http_proxy" in error.reason
    assert "wrong-password" not in error.reason
    assert sendgrid.requests == []


def test_https_proxy_does_not_apply_to_an_http_host(sendgrid, proxy):
    # As in urllib: each scheme has its own variable
    provider = SendGridProvider(API_KEY, sendgrid.url, environ={"HTTPS_PROXY": proxy.url})

    provider.send(EMAIL, SENDER, addressees())

    assert len(sendgrid.wait_for_requests(1)) == 1
    assert proxy.connections == 0


# --- the log line ------------------------------------------------------------------------


def test_the_proxy_in_use_is_logged_once_without_its_credentials(
    https_sendgrid, trusting, guarded_proxy, caplog
):
    caplog.set_level(logging.INFO, logger="tribe_worker.emails.proxies")
    environ = {"HTTPS_PROXY": f"http://{USER}:{PASSWORD}@{guarded_proxy.address}"}

    provider = SendGridProvider(API_KEY, https_sendgrid.url, environ=environ, tls=trusting)
    provider.send(EMAIL, SENDER, addressees())
    provider.send(EMAIL, SENDER, addressees())

    (line,) = [r.getMessage() for r in caplog.records if "proxy" in r.getMessage()]
    assert f"the proxy http://{guarded_proxy.address} (HTTPS_PROXY, with credentials)" in line
    assert PASSWORD not in caplog.text
    assert USER not in caplog.text


def test_a_bypass_is_logged_and_no_proxy_variables_log_nothing(https_sendgrid, trusting, caplog):
    logger = "tribe_worker.emails.proxies"
    caplog.set_level(logging.INFO, logger=logger)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == logger]

    SendGridProvider(API_KEY, https_sendgrid.url, environ={}, tls=trusting)
    assert lines() == []

    environ = {"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": "127.0.0.1"}
    SendGridProvider(API_KEY, https_sendgrid.url, environ=environ, tls=trusting)
    (line,) = lines()
    assert "is listed in NO_PROXY: requests go direct" in line
