"""The settings of issue #18: the SMTP relay and its failover, the model of digest summaries."""

from __future__ import annotations

import pytest

from tests.support.environments import PRODUCTION
from tribe_shared.settings import ConfigError, Settings


def test_defaults_are_sendgrid_no_failover_and_no_model():
    settings = Settings.from_env({})
    assert settings.email_provider == "sendgrid"
    assert settings.email_failover_to_smtp is False
    assert settings.openai_api_key is None


def test_the_smtp_relay_is_read_with_its_options():
    settings = Settings.from_env(
        {
            "EMAIL_PROVIDER": "SMTP",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_PORT": "2525",
            "SMTP_USERNAME": "tribe",
            "SMTP_PASSWORD": "secret",
            "SMTP_STARTTLS": "false",
        }
    )
    assert (settings.email_provider, settings.smtp_host, settings.smtp_port) == (
        "smtp",
        "smtp.example.com",
        2525,
    )
    assert settings.smtp_starttls is False
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"EMAIL_PROVIDER": "ses"}, "EMAIL_PROVIDER"),
        ({"EMAIL_PROVIDER": "smtp"}, "SMTP_HOST"),
        ({"EMAIL_FAILOVER_TO_SMTP": "true"}, "SMTP_HOST"),
        ({"EMAIL_FAILOVER_TO_SMTP": "maybe", "SMTP_HOST": "h"}, "EMAIL_FAILOVER_TO_SMTP"),
        ({"SMTP_HOST": "h", "SMTP_USERNAME": "u"}, "SMTP_PASSWORD"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL"),
        ({"OPENAI_MAX_TOKENS": "5"}, "OPENAI_MAX_TOKENS"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(environ, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(environ)


def test_the_openai_model_settings_are_read():
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1",
            "OPENAI_MODEL": "llama3",
            "OPENAI_TIMEOUT_SECONDS": "3",
            "OPENAI_MAX_TOKENS": "120",
        }
    )
    assert settings.openai_model == "llama3"
    assert settings.openai_timeout_seconds == 3.0
    assert settings.openai_max_tokens == 120
    assert "sk-test" not in repr(settings)


def test_production_with_the_smtp_relay_needs_no_sendgrid_key():
    environ = {k: v for k, v in PRODUCTION.items() if k != "SENDGRID_API_KEY"}
    with pytest.raises(ConfigError, match="SENDGRID_API_KEY"):
        Settings.from_env(environ)

    settings = Settings.from_env({**environ, "EMAIL_PROVIDER": "smtp", "SMTP_HOST": "relay"})

    assert settings.email_provider == "smtp" and settings.sendgrid_api_key is None
