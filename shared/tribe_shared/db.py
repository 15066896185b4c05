"""The database handle, created unbound and bound at start-up from ``DATABASE_URL``.

PostgreSQL connections are pooled (the API opens and closes one per request, each worker thread
one per job); SQLite runs in WAL mode so the API and the in-process worker can write side by side.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

#: The one database handle every model uses; :func:`bind` points it at a real database.
database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}


def open_database(url: str, *, max_connections: int = 32) -> Database:
    """Create (but do not connect) the peewee database for a ``DATABASE_URL``."""
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            timeout=10,
            returning_clause=sqlite3.sqlite_version_info >= (3, 35),
            check_same_thread=False,
        )
    options = dict(parse_qsl(parsed.query))
    return PooledPostgresqlDatabase(
        unquote(parsed.path.lstrip("/")),
        host=parsed.hostname,
        port=parsed.port,
        user=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        max_connections=max_connections,
        stale_timeout=300,
        timeout=10,
        **options,
    )


def bind(url: str, **kwargs) -> Database:
    """Point :data:`database` at the database of ``url`` and return it."""
    real = open_database(url, **kwargs)
    database.initialize(real)
    return real


@contextmanager
def connection() -> Iterator[None]:
    """Hold a connection for a unit of work outside a request (a job, a relay pass)."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            database.close()


def is_postgres() -> bool:
    return isinstance(database.obj, PooledPostgresqlDatabase)
