"""The providers: email (SendGrid or SMTP, the sender, the failover), Twilio for SMS and
WhatsApp, and the OpenAI-compatible model that writes digest summaries."""

from __future__ import annotations

import re
from email.utils import parseaddr

from tribe_shared.settings.constants import (
    DEFAULT_EMAIL_FROM,
    DEFAULT_OPENAI_MAX_TOKENS,
    DEFAULT_OPENAI_MODEL,
    DEFAULT_OPENAI_TIMEOUT_SECONDS,
    DEFAULT_SENDGRID_API_HOST,
    DEFAULT_SMS_RATE_LIMIT_PER_SECOND,
    DEFAULT_SMTP_PORT,
    DEFAULT_SMTP_TIMEOUT_SECONDS,
    DEFAULT_TWILIO_API_BASE_URL,
    EMAIL_PROVIDERS,
)
from tribe_shared.settings.parsing import ConfigError, _check_url, _Env, _flag


def _email(env: _Env, production: bool) -> dict:
    """The email provider, the sender, and where emails link to."""
    sendgrid_api_key = env.get("SENDGRID_API_KEY")
    smtp_only = env.get("EMAIL_PROVIDER", "sendgrid").lower() == "smtp"
    if sendgrid_api_key is None and production and not smtp_only:
        raise ConfigError(
            "SendGrid is required for production - SENDGRID_API_KEY must be configured"
        )
    sendgrid_api_host = env.get("SENDGRID_API_HOST", DEFAULT_SENDGRID_API_HOST).rstrip("/")
    _check_url("SENDGRID_API_HOST", sendgrid_api_host, ("http", "https"))
    email_from_name, email_from = _sender(env.get("EMAIL_FROM", DEFAULT_EMAIL_FROM))
    public_base_url = env.get("PUBLIC_BASE_URL")
    if public_base_url is not None:
        public_base_url = public_base_url.rstrip("/")
        _check_url("PUBLIC_BASE_URL", public_base_url, ("http", "https"))
    return {
        "sendgrid_api_key": sendgrid_api_key,
        "sendgrid_api_host": sendgrid_api_host,
        "email_from": email_from,
        "email_from_name": email_from_name,
        "public_base_url": public_base_url,
    }


def _sender(value: str) -> tuple[str | None, str]:
    """``EMAIL_FROM``: an address, or a display name and an address (``Tribe <a@b.c>``)."""
    problem = ConfigError(
        f"EMAIL_FROM must be an email address, or a name and an address "
        f"(Tribe <no-reply@tribe.app>), not {value!r}"
    )
    if any(c in value for c in "\r\n\0"):
        raise problem
    name, address = parseaddr(value)
    if "<" in value and not (value.rstrip().endswith(">") and name):
        raise problem
    if "<" not in value and value.strip() != address:
        raise problem
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c in address for c in " <>\"'"):
        raise problem
    return (name.strip() or None), address


def _content(env: _Env, production: bool) -> dict:
    """Issue #18: the SMTP provider (or failover to it) and the model of digest summaries."""
    number = env.number
    provider = env.get("EMAIL_PROVIDER", "sendgrid").lower()
    if provider not in EMAIL_PROVIDERS:
        raise ConfigError(
            f"EMAIL_PROVIDER must be one of {', '.join(EMAIL_PROVIDERS)}, not {provider!r}"
        )
    failover = _flag(env, "EMAIL_FAILOVER_TO_SMTP", False)
    smtp_host = env.get("SMTP_HOST")
    if smtp_host is None and (provider == "smtp" or failover):
        why = "EMAIL_PROVIDER=smtp" if provider == "smtp" else "EMAIL_FAILOVER_TO_SMTP"
        raise ConfigError(f"An SMTP relay is required by {why} - SMTP_HOST must be configured")
    username, password = env.get("SMTP_USERNAME"), env.get("SMTP_PASSWORD")
    if (username is None) != (password is None):
        raise ConfigError("SMTP_USERNAME and SMTP_PASSWORD must be configured together")
    base_url = env.get("OPENAI_BASE_URL")
    if base_url is not None:
        _check_url("OPENAI_BASE_URL", base_url, ("http", "https"))
    return {
        "email_provider": provider,
        "smtp_host": smtp_host,
        "smtp_port": number("SMTP_PORT", DEFAULT_SMTP_PORT, int, 1, 65535),
        "smtp_username": username,
        "smtp_password": password,
        "smtp_starttls": _flag(env, "SMTP_STARTTLS", True),
        "smtp_timeout_seconds": number(
            "SMTP_TIMEOUT_SECONDS", DEFAULT_SMTP_TIMEOUT_SECONDS, float, 0.1, 300
        ),
        "email_failover_to_smtp": failover,
        "openai_api_key": env.get("OPENAI_API_KEY"),
        "openai_base_url": base_url,
        "openai_model": env.get("OPENAI_MODEL", DEFAULT_OPENAI_MODEL),
        "openai_timeout_seconds": number(
            "OPENAI_TIMEOUT_SECONDS", DEFAULT_OPENAI_TIMEOUT_SECONDS, float, 0.1, 120
        ),
        "openai_max_tokens": number("OPENAI_MAX_TOKENS", DEFAULT_OPENAI_MAX_TOKENS, int, 16, 2000),
    }


def _twilio(env: _Env) -> dict:
    """Twilio, for SMS and WhatsApp: optional (jobs on those channels fail clearly without it),
    but an account needs its token and a sender, and a sender must look like one."""
    sid, token = env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")
    if (sid is None) != (token is None):
        missing = "TWILIO_AUTH_TOKEN" if token is None else "TWILIO_ACCOUNT_SID"
        raise ConfigError(f"Twilio needs both its account and its token - {missing} is not set")
    sms_from = env.get("TWILIO_SMS_FROM")
    service = env.get("TWILIO_MESSAGING_SERVICE_SID")
    whatsapp_from = env.get("TWILIO_WHATSAPP_FROM")
    if sms_from is not None and not re.fullmatch(r"\+[1-9]\d{6,14}", sms_from):
        raise ConfigError(
            f"TWILIO_SMS_FROM must be an E.164 number (+15551234567), not {sms_from!r}"
        )
    if service is not None and not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
        raise ConfigError(
            f"TWILIO_MESSAGING_SERVICE_SID must be MG and 32 hex digits, not {service!r}"
        )
    if whatsapp_from is not None and not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", whatsapp_from):
        raise ConfigError(
            f"TWILIO_WHATSAPP_FROM must be whatsapp:<E.164 number>, not {whatsapp_from!r}"
        )
    if sid is not None and sms_from is None and service is None and whatsapp_from is None:
        raise ConfigError(
            "Twilio needs a sender - set TWILIO_SMS_FROM, TWILIO_MESSAGING_SERVICE_SID "
            "or TWILIO_WHATSAPP_FROM"
        )
    templates = {}
    for kind in ("update", "digest"):
        name = f"TWILIO_WHATSAPP_{kind.upper()}_TEMPLATE"
        value = env.get(name)
        if value is not None and not re.fullmatch(r"HX[0-9a-fA-F]{32}", value):
            raise ConfigError(f"{name} must be a Content SID (HX and 32 hex digits), not {value!r}")
        templates[f"twilio_whatsapp_{kind}_template"] = value
    base_url = env.get("TWILIO_API_BASE_URL", DEFAULT_TWILIO_API_BASE_URL).rstrip("/")
    _check_url("TWILIO_API_BASE_URL", base_url, ("http", "https"))
    rate = env.number("SMS_RATE_LIMIT_PER_SECOND", DEFAULT_SMS_RATE_LIMIT_PER_SECOND, float, 0.001)
    return {
        "twilio_account_sid": sid,
        "twilio_auth_token": token,
        "twilio_sms_from": sms_from,
        "twilio_messaging_service_sid": service,
        "twilio_whatsapp_from": whatsapp_from,
        "twilio_api_base_url": base_url,
        "sms_rate_limit_per_second": rate,
        **templates,
    }
