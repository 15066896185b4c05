"""Reading variables: the error every bad value raises, and the helpers every area shares
(an empty value is unset, numbers with bounds, true/false flags, URLs by scheme)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse


class ConfigError(Exception):
    """A configuration variable is missing or has a value we cannot use."""


class _Env:
    """Reads variables, treating an empty value as unset."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or default

    def number(self, name, default, kind, minimum, maximum=None):
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise ConfigError(f"{name} must be {noun}, not {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise ConfigError(f"{name} must be {bounds}, not {raw!r}")
        return value


def _flag(env: _Env, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    try:
        parsed = urlparse(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme not in schemes:
        raise ConfigError(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, "
            f"not {value!r}"
        )
    if scheme in ("http", "https", "postgres", "postgresql", "redis", "rediss"):
        if not parsed.hostname:
            raise ConfigError(f"{name} has no host: {value!r}")
        try:
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(f"{name} has an invalid port: {value!r}") from None
    if scheme == "sqlite" and not parsed.path.strip("/"):
        raise ConfigError(f"{name} names no database file: {value!r}")
