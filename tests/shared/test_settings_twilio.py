"""Twilio's settings: optional, but an account needs its token and a sender, each well formed."""

from __future__ import annotations

import pytest

from tribe_shared.settings import ConfigError, Settings

SID = "AC" + "0" * 32


def twilio_env(**changes) -> dict:
    env = {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": "twilio-secret",
        "TWILIO_SMS_FROM": "+15005550006",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_twilio_is_off_by_default():
    settings = Settings.from_env({})
    assert settings.twilio_account_sid is None
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.sms_rate_limit_per_second == 10


def test_a_configured_account_is_read_with_its_senders_and_base_url():
    settings = Settings.from_env(
        twilio_env(
            TWILIO_WHATSAPP_FROM="whatsapp:+14155238886",
            TWILIO_API_BASE_URL="http://127.0.0.1:9999/",
            SMS_RATE_LIMIT_PER_SECOND="2.5",
            TWILIO_WHATSAPP_DIGEST_TEMPLATE="HX" + "a" * 32,
        )
    )
    assert settings.twilio_sms_from == "+15005550006"
    assert settings.twilio_whatsapp_from == "whatsapp:+14155238886"
    assert settings.twilio_api_base_url == "http://127.0.0.1:9999"
    assert settings.sms_rate_limit_per_second == 2.5
    assert settings.twilio_whatsapp_digest_template == "HX" + "a" * 32
    assert "twilio-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_SMS_FROM": None}, "TWILIO_SMS_FROM"),
        ({"TWILIO_SMS_FROM": "07700 900123"}, "TWILIO_SMS_FROM"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "nope"}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_WHATSAPP_FROM": "+14155238886"}, "TWILIO_WHATSAPP_FROM"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL"),
        ({"SMS_RATE_LIMIT_PER_SECOND": "-1"}, "SMS_RATE_LIMIT_PER_SECOND"),
        ({"TWILIO_WHATSAPP_UPDATE_TEMPLATE": "welcome"}, "TWILIO_WHATSAPP_UPDATE_TEMPLATE"),
    ],
)
def test_a_missing_or_malformed_twilio_setting_is_a_start_up_error_naming_it(changes, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(twilio_env(**changes))
