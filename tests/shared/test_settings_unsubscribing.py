"""The settings of issue #14: the event webhook's key, the API's public URL, the unsubscribe
links' secret and mailbox, and a sender with a display name."""

from __future__ import annotations

import pytest

from tests.shared.test_settings import PRODUCTION
from tests.support.webhooks import SendGridSigner
from tribe_shared.settings import ConfigError, Settings


def test_production_needs_the_webhook_key_the_api_s_url_and_the_unsubscribe_secret():
    settings = Settings.from_env(PRODUCTION)

    assert settings.sendgrid_webhook_public_key == PRODUCTION["SENDGRID_WEBHOOK_PUBLIC_KEY"]
    assert settings.api_public_url == "https://jobs.tribe.example"
    assert settings.unsubscribe_secret == PRODUCTION["UNSUBSCRIBE_SECRET"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (
            "SENDGRID_WEBHOOK_PUBLIC_KEY",
            "SendGrid's event webhook is required for production - "
            "SENDGRID_WEBHOOK_PUBLIC_KEY must be configured",
        ),
        ("API_PUBLIC_URL", "API_PUBLIC_URL must be configured"),
        ("UNSUBSCRIBE_SECRET", "UNSUBSCRIBE_SECRET must be configured"),
    ],
)
def test_production_without_one_of_them_names_it(missing, message):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}

    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", "not base64!", "the verification key SendGrid shows"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", "c2VjcmV0", "the verification key SendGrid shows"),
        ("API_PUBLIC_URL", "http://jobs.tribe.example", "must be an https:// URL in production"),
        ("API_PUBLIC_URL", "ftp://x", "API_PUBLIC_URL must be a URL"),
        ("UNSUBSCRIBE_SECRET", "short", "UNSUBSCRIBE_SECRET must be at least 32 characters"),
        ("UNSUBSCRIBE_MAILTO", "not an address", "UNSUBSCRIBE_MAILTO must be an email address"),
        ("EMAIL_FROM", "Tribe <no-reply@tribe.app", "EMAIL_FROM must be an email address"),
        ("EMAIL_FROM", "a@b.co, c@d.co", "EMAIL_FROM must be an email address"),
    ],
)
def test_a_bad_value_names_its_variable(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**PRODUCTION, name: value})


def test_email_from_may_carry_a_display_name():
    settings = Settings.from_env({"EMAIL_FROM": "Tribe <no-reply@tribe.app>"})

    assert (settings.email_from_name, settings.email_from) == ("Tribe", "no-reply@tribe.app")


def test_development_links_to_the_local_api_and_test_links_nowhere_unless_told():
    assert Settings.from_env({"PORT": "8123"}).api_public_url == "http://127.0.0.1:8123"
    test = {"APP_ENV": "test", "DATABASE_URL": "sqlite:///x.db"}
    assert Settings.from_env(test).api_public_url is None
    assert Settings.from_env(test).sendgrid_webhook_public_key is None


def test_a_key_from_sendgrid_s_own_format_is_accepted():
    key = SendGridSigner().public_key

    settings = Settings.from_env({"SENDGRID_WEBHOOK_PUBLIC_KEY": key})

    assert settings.sendgrid_webhook_public_key == key
