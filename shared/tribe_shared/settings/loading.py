"""For entry points: load the settings, or print the configuration problem and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from tribe_shared.settings.model import Settings
from tribe_shared.settings.parsing import ConfigError


def load_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """:meth:`Settings.from_env` for entry points: print the problem and exit 2 on a bad config."""
    with exit_on_config_error():
        return Settings.from_env(environ)


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """For entry points: a :class:`ConfigError` raised inside prints its one line and exits 2.

    Settings are not the only start-up step that reads configuration: a provider reads its
    own variables (the proxy ones) when it is built.
    """
    try:
        yield
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
