"""The command-line options every bench with its own database and Redis namespace shares."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import urlparse

from common.paths import RESULTS_DIR
from common.safety import is_loopback
from common.store import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL


def add_store_options(parser: argparse.ArgumentParser, name: str) -> None:
    """``--postgres-url``, ``--database``, ``--redis-url``, ``--namespace`` (the bench's own,
    both ``name`` by default), ``--keep-db`` and ``--results``."""
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--database", default=name, help="the bench's own database")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--namespace", default=name, help="the bench's own Redis namespace")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where to write results")


def check_store_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what could touch anything but the bench's own: a server that is not on this
    machine, a database or namespace that is not a plain identifier (it is quoted into SQL and
    into the pattern of the Redis keys it deletes)."""
    for name in ("postgres_url", "redis_url"):
        host = urlparse(getattr(args, name)).hostname
        if not is_loopback(host):
            parser.error(
                f"--{name.replace('_', '-')} must point at a loopback address, not {host!r}"
            )
    for name in ("database", "namespace"):
        if not getattr(args, name).replace("_", "").isalnum():
            parser.error(f"--{name} must be a plain identifier")
