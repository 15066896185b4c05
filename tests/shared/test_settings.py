"""Settings: the contract's defaults, production fail-fast, and clear errors for bad values."""

import subprocess
import sys

import pytest

from tests.support.environments import PRODUCTION
from tribe_shared.settings import DEV_JWT_SECRET, ConfigError, Settings


def test_development_defaults_follow_the_contract():
    settings = Settings.from_env({})
    assert settings.app_env == "development"
    assert settings.database_url == "sqlite:///var/tribe.db"
    assert settings.redis_url is None
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.sendgrid_api_key is None
    assert settings.sendgrid_api_host == "https://api.sendgrid.com"
    assert settings.email_from == "no-reply@tribe.local"
    assert settings.email_rate_limit_per_second == 50
    assert settings.max_retries == 3
    assert settings.port == 8000


def test_a_complete_production_environment_is_accepted():
    settings = Settings.from_env(PRODUCTION)
    assert settings.is_production
    assert settings.redis_url == PRODUCTION["REDIS_URL"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("REDIS_URL", "Redis is required for production - REDIS_URL must be configured"),
        ("DATABASE_URL", "DATABASE_URL must be configured"),
        ("JWT_SECRET", "JWT_SECRET must be configured"),
        ("SENDGRID_API_KEY", "SENDGRID_API_KEY must be configured"),
    ],
)
def test_production_without_a_required_variable_names_it(missing, message):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("APP_ENV", "staging", "APP_ENV must be one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL starting with"),
        ("DATABASE_URL", "postgresql://:5432/x", "DATABASE_URL has no host"),
        ("DATABASE_URL", "postgresql://h:notaport/x", "DATABASE_URL has an invalid port"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL starting with"),
        ("SENDGRID_API_HOST", "ftp://sendgrid", "SENDGRID_API_HOST must be a URL"),
        ("EMAIL_FROM", "not-an-address", "EMAIL_FROM must be an email address"),
        ("EMAIL_FROM", "a@b.co\r\nBcc: x@y.z", "EMAIL_FROM must be an email address"),
        ("EMAIL_RATE_LIMIT_PER_SECOND", "-5", "EMAIL_RATE_LIMIT_PER_SECOND must be at least"),
        ("EMAIL_RATE_LIMIT_PER_SECOND", "fast", "EMAIL_RATE_LIMIT_PER_SECOND must be a number"),
        ("MAX_RETRIES", "-1", "MAX_RETRIES must be at least 0"),
        ("MAX_RETRIES", "2.5", "MAX_RETRIES must be an integer"),
        ("PORT", "70000", "PORT must be 1 to 65535"),
        ("PUBLIC_BASE_URL", "tribe.example.com", "PUBLIC_BASE_URL must be a URL starting with"),
        ("SUPABASE_URL", "abcdefgh.supabase.co", "SUPABASE_URL must be a URL starting with"),
        ("JWT_JWKS_URL", "file:///etc/jwks.json", "JWT_JWKS_URL must be a URL starting with"),
        ("JWT_JWKS_URL", "https://", "JWT_JWKS_URL has no host"),
        ("JWT_ISSUER", "supabase,,https://x", "JWT_ISSUER must be issuers separated by commas"),
        ("JWT_MAX_LIFETIME_SECONDS", "1d", "JWT_MAX_LIFETIME_SECONDS must be an integer"),
        ("JWT_MAX_LIFETIME_SECONDS", "30", "JWT_MAX_LIFETIME_SECONDS must be at least 60"),
        ("JWT_JWKS_TIMEOUT_SECONDS", "0", "JWT_JWKS_TIMEOUT_SECONDS must be 0.1 to 30"),
        ("JWT_JWKS_TIMEOUT_SECONDS", "forever", "JWT_JWKS_TIMEOUT_SECONDS must be a number"),
        ("JOB_RETENTION_DAYS", "0", "JOB_RETENTION_DAYS must be at least 1"),
        ("CONTENT_RETENTION_DAYS", "a month", "CONTENT_RETENTION_DAYS must be an integer"),
        ("DATABASE_POOLER", "statement", "DATABASE_POOLER must be one of none, transaction"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT must be"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})


def test_a_short_jwt_secret_is_refused_in_production():
    with pytest.raises(ConfigError, match="JWT_SECRET must be at least 32 characters"):
        Settings.from_env({**PRODUCTION, "JWT_SECRET": "short"})


@pytest.mark.parametrize(
    "secret",
    [
        "change-me-to-a-long-random-secret-of-32+chars",  # docker-compose's old default
        "replace-this-placeholder-with-a-long-random-secret",
        DEV_JWT_SECRET,
    ],
)
def test_production_refuses_a_placeholder_jwt_secret(secret):
    with pytest.raises(ConfigError, match="JWT_SECRET is a placeholder"):
        Settings.from_env({**PRODUCTION, "JWT_SECRET": secret})


def test_retention_pooler_and_tracing_default_to_the_contract():
    settings = Settings.from_env({})
    assert (settings.job_retention_days, settings.content_retention_days) == (90, 30)
    assert settings.database_pooler == "none" and not settings.transaction_pooler
    assert settings.otel_exporter_otlp_endpoint is None


def test_a_transaction_pooler_is_declared_by_its_mode():
    settings = Settings.from_env({"DATABASE_POOLER": "Transaction"})
    assert settings.transaction_pooler


def test_without_token_variables_only_hs256_tokens_are_checked_and_no_issuer():
    settings = Settings.from_env({})
    assert settings.jwt_jwks_url is None
    assert settings.jwt_issuers == ()
    assert settings.jwt_max_lifetime_seconds == 86_400
    assert settings.jwt_jwks_timeout_seconds == 2


def test_a_supabase_url_gives_the_projects_jwks_url_and_issuers():
    settings = Settings.from_env({"SUPABASE_URL": "https://abcdefgh.supabase.co/"})
    assert settings.jwt_jwks_url == "https://abcdefgh.supabase.co/auth/v1/.well-known/jwks.json"
    assert settings.jwt_issuers == ("https://abcdefgh.supabase.co/auth/v1", "supabase")


def test_explicit_jwks_url_and_issuers_win_over_the_supabase_url():
    settings = Settings.from_env(
        {
            "SUPABASE_URL": "https://abcdefgh.supabase.co",
            "JWT_JWKS_URL": "https://auth.tribe.example/jwks.json",
            "JWT_ISSUER": "https://auth.tribe.example, supabase",
        }
    )
    assert settings.jwt_jwks_url == "https://auth.tribe.example/jwks.json"
    assert settings.jwt_issuers == ("https://auth.tribe.example", "supabase")


@pytest.mark.parametrize(
    ("name", "value"),
    [("SUPABASE_URL", "http://supabase.internal"), ("JWT_JWKS_URL", "http://auth/jwks.json")],
)
def test_production_fetches_signing_keys_only_over_https(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be an https:// URL in production"):
        Settings.from_env({**PRODUCTION, name: value})


def test_the_public_base_url_is_optional_and_kept_without_a_trailing_slash():
    assert Settings.from_env({}).public_base_url is None
    configured = Settings.from_env({"PUBLIC_BASE_URL": "https://app.tribe.example/"})
    assert configured.public_base_url == "https://app.tribe.example"


def test_empty_variables_count_as_unset():
    assert Settings.from_env({"REDIS_URL": "", "PORT": " "}).redis_url is None


def _run(args, env):
    return subprocess.run(
        args, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60
    )


BIN = f"{sys.prefix}/bin"


@pytest.mark.parametrize(
    "command",
    [
        [f"{BIN}/tribe-migrate"],
        [f"{BIN}/gunicorn", "-c", "services/api/gunicorn.conf.py", "--check-config"],
        [f"{BIN}/dramatiq", "tribe_worker.main:broker", "--processes", "1"],
    ],
    ids=["release", "web", "worker"],
)
def test_each_process_refuses_to_start_in_production_without_redis(command):
    env = {k: v for k, v in PRODUCTION.items() if k != "REDIS_URL"}
    result = _run(command, env)
    assert result.returncode != 0
    assert "Redis is required for production - REDIS_URL must be configured" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_value_stops_a_process_with_a_one_line_message():
    result = _run([f"{BIN}/tribe-migrate"], {"MAX_RETRIES": "many"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: MAX_RETRIES must be an integer, not 'many'"
    )
