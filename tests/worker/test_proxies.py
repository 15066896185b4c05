"""Which proxy a SendGrid URL goes through: the standard variables, read as urllib reads them;
a worker given a proxy URL it cannot use stops at start-up."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from tests.support.environments import PRODUCTION
from tribe_shared.settings import ConfigError
from tribe_worker.emails.proxies import Proxy, proxy_for

SENDGRID = "https://api.sendgrid.com"


def test_without_proxy_variables_requests_go_direct():
    assert proxy_for(SENDGRID, {}) is None


def test_an_https_url_goes_through_https_proxy_and_an_http_url_through_http_proxy():
    environ = {"HTTPS_PROXY": "http://secure.proxy:3128", "HTTP_PROXY": "http://plain.proxy:8080"}

    assert proxy_for(SENDGRID, environ) == Proxy("secure.proxy", 3128, "HTTPS_PROXY")
    assert proxy_for("http://127.0.0.1:9000", environ) == Proxy("plain.proxy", 8080, "HTTP_PROXY")


def test_each_scheme_only_uses_its_own_variable():
    assert proxy_for(SENDGRID, {"HTTP_PROXY": "http://plain.proxy:8080"}) is None
    assert proxy_for("http://127.0.0.1:9000", {"HTTPS_PROXY": "http://p:3128"}) is None
    assert proxy_for(SENDGRID, {"ALL_PROXY": "http://every.proxy:3128"}) is None


def test_the_lower_case_variable_wins_over_the_upper_case_one():
    environ = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}

    assert proxy_for(SENDGRID, environ) == Proxy("lower", 2, "https_proxy")


def test_an_empty_variable_counts_as_unset_and_an_empty_lower_case_one_disables_the_proxy():
    assert proxy_for(SENDGRID, {"HTTPS_PROXY": ""}) is None
    assert proxy_for(SENDGRID, {"HTTPS_PROXY": "http://upper:1", "https_proxy": ""}) is None


@pytest.mark.parametrize(
    "no_proxy",
    [
        "*",
        "api.sendgrid.com",
        "sendgrid.com",
        ".sendgrid.com",
        "localhost, SENDGRID.COM",
        "api.sendgrid.com:443",
    ],
)
def test_no_proxy_bypasses_the_host_itself_its_domain_or_everything(no_proxy):
    environ = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy}

    assert proxy_for(f"{SENDGRID}:443", environ) is None


@pytest.mark.parametrize("no_proxy", ["notsendgrid.com", "api.sendgrid.com:8443", "example.com"])
def test_no_proxy_naming_other_hosts_leaves_the_proxy_in_use(no_proxy):
    environ = {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": no_proxy}

    assert proxy_for(f"{SENDGRID}:443", environ) is not None


def test_credentials_become_basic_proxy_authorization_percent_decoded():
    proxy = proxy_for(SENDGRID, {"HTTPS_PROXY": "http://mailer:p%40ss%3Aword@proxy:3128"})

    expected = base64.b64encode(b"mailer:p@ss:word").decode()
    assert proxy.headers == {"Proxy-Authorization": f"Basic {expected}"}


def test_a_user_without_a_password_sends_no_credentials_as_urllib_does():
    assert proxy_for(SENDGRID, {"HTTPS_PROXY": "http://mailer@proxy:3128"}).headers == {}


def test_the_proxy_prints_and_reprs_without_its_credentials():
    proxy = proxy_for(SENDGRID, {"HTTPS_PROXY": "http://mailer:s3cret@proxy:3128"})

    assert str(proxy) == "http://proxy:3128"
    assert "s3cret" not in repr(proxy)
    assert "mailer" not in repr(proxy)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("proxy.internal:3128", Proxy("proxy.internal", 3128, "HTTPS_PROXY")),
        ("https://proxy.internal:3128", Proxy("proxy.internal", 3128, "HTTPS_PROXY")),
        ("http://proxy.internal", Proxy("proxy.internal", 443, "HTTPS_PROXY")),
    ],
    ids=["no-scheme", "https-scheme", "no-port"],
)
def test_proxy_urls_are_read_as_urllib_reads_them(value, expected):
    assert proxy_for(SENDGRID, {"HTTPS_PROXY": value}) == expected


@pytest.mark.parametrize(
    "value", ["socks5://mailer:s3cret@proxy:1080", "http://mailer:s3cret@proxy:port", "http://"]
)
def test_a_proxy_url_we_cannot_use_is_a_configuration_error_naming_the_variable(value):
    with pytest.raises(ConfigError, match="HTTPS_PROXY must be a proxy URL") as error:
        proxy_for(SENDGRID, {"HTTPS_PROXY": value})

    assert "s3cret" not in str(error.value)


def test_a_worker_given_a_proxy_url_it_cannot_use_stops_at_start_up_with_one_line():
    # Given the process environment of a worker, with a SOCKS proxy (urllib cannot use one)
    env = {"PATH": "/usr/bin:/bin", **PRODUCTION, "HTTPS_PROXY": "socks5://mailer:s3cret@p:1080"}

    # When the worker starts
    result = subprocess.run(
        [f"{sys.prefix}/bin/dramatiq", "tribe_worker.main:broker", "--processes", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then it stops, naming the variable, without a traceback or the password
    assert result.returncode != 0
    assert "configuration error: HTTPS_PROXY must be a proxy URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
