"""The database handle, created unbound and bound at start-up from ``DATABASE_URL``.

PostgreSQL connections are pooled (the API opens and closes one per request, each worker thread
one per job); SQLite runs in WAL mode so the API and the in-process worker can write side by side.

Behind a transaction-mode pooler (PgBouncer, Supavisor: ``DATABASE_POOLER=transaction``) each
transaction may run on another server connection, so nothing may outlive one: no prepared
statements (:class:`tribe_shared.sql.run.Prepared` sends its plain text instead) and no session
settings (every ``SET`` of ours is ``SET LOCAL``, inside a transaction).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from peewee import Database, DatabaseProxy, InterfaceError, OperationalError, SqliteDatabase
from playhouse.pool import PooledPostgresqlDatabase

#: The one database handle every model uses; :func:`bind` points it at a real database.
database = DatabaseProxy()
#: Whether :data:`database` is reached through a transaction-mode pooler (set by :func:`bind`).
_behind_transaction_pooler = False

#: What peewee raises when the database cannot be reached (down, restarting, connection cut);
#: :func:`is_unreachable` tells those from a bad statement.
DATABASE_DOWN_ERRORS = (OperationalError, InterfaceError)
#: How long opening a PostgreSQL connection may take unless ``DATABASE_URL`` sets
#: ``connect_timeout``: past it the database counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 5
#: SQLite errors that mean "cannot get at the database now", not "this statement is wrong".
SQLITE_OUTAGES = ("unable to open", "database is locked", "disk i/o error", "readonly database")

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "synchronous": "normal",
}


class _PooledPostgres(PooledPostgresqlDatabase):
    """The pool, without a ``SELECT 1`` round trip on every check-out.

    peewee pings each connection it hands out; that was one statement in three of an accepted
    request and one in six of a delivered email. A connection the server dropped is found by
    its next statement instead (which fails once), then discarded.
    """

    def _is_closed(self, conn):
        if conn.closed:
            return True
        adapter = self._adapter
        status = adapter.txn_status(conn)
        if status == adapter.txn_unknown:
            return True
        if status != adapter.txn_idle:
            try:
                adapter.rollback(conn)
            except Exception:
                return True
        return False


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
    # Without it libpq waits as long as the network lets it for a host that does not answer.
    options.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
    return _PooledPostgres(
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


def bind(url: str, *, pooler: str = "none", **kwargs) -> Database:
    """Point :data:`database` at the database of ``url`` and return it; ``pooler``
    (``DATABASE_POOLER``) ``transaction`` when the URL is a transaction-mode pooler's."""
    global _behind_transaction_pooler
    real = open_database(url, **kwargs)
    database.initialize(real)
    _behind_transaction_pooler = pooler == "transaction"
    return real


def behind_transaction_pooler() -> bool:
    """Whether nothing may outlive a transaction: no prepared statement, no session setting."""
    return _behind_transaction_pooler


@contextmanager
def connection() -> Iterator[None]:
    """Hold a connection for a unit of work outside a request (a job, a relay pass)."""
    opened = database.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened:
            database.close()


def locking_transaction():
    """A transaction whose locked rows a concurrent one skips (SQLite: take the write lock).

    On PostgreSQL the caller's ``SELECT … FOR UPDATE SKIP LOCKED`` does the locking; SQLite
    has no row locks, so the transaction takes the database's write lock from its start.
    """
    if is_postgres():
        return database.atomic()
    return database.atomic("IMMEDIATE")


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached now, rather than a bad statement.

    PostgreSQL reports connection trouble (and cancelled or deadlocked statements, worth trying
    again too) as ``OperationalError``; SQLite reports bad SQL that way as well.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__ or exc.__context__ or exc
    if type(cause).__module__.startswith("sqlite3"):
        return any(marker in str(cause).lower() for marker in SQLITE_OUTAGES)
    return True


def is_postgres() -> bool:
    return isinstance(database.obj, PooledPostgresqlDatabase)
