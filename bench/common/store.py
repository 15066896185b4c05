"""The bench's own PostgreSQL database and Redis namespace: created, emptied, removed."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import psycopg2
import redis

from common import product

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class BenchStore:
    """The bench database (an autocommit connection to it, and the product's peewee database
    once :meth:`bind` is called) and the bench's Redis namespace (none if ``redis_url`` is)."""

    def __init__(self, admin_url: str, database: str, redis_url: str | None, namespace: str):
        self.admin_url = admin_url
        self.database = database
        self.url = admin_url.rsplit("/", 1)[0] + "/" + database
        self.namespace = namespace
        self.redis = (
            redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
            if redis_url
            else None
        )
        self._conn = None
        self._bound = None

    def admin(self):
        """An autocommit connection to the admin database (close it)."""
        conn = psycopg2.connect(self.admin_url, connect_timeout=3)
        conn.autocommit = True
        return conn

    def create(self, *, fresh: bool = False) -> None:
        """Create the database (``fresh``: drop it first; else keep one left by ``--keep-db``),
        bring its schema up to date, check Redis and empty both."""
        admin = self.admin()
        try:
            with admin.cursor() as cur:
                if fresh:
                    cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            admin.close()
        database = product.db.bind(self.url)
        with database.connection_context():
            product.apply_migrations(database)
        database.close_all()
        self._conn = psycopg2.connect(self.url, connect_timeout=3)
        self._conn.autocommit = True
        if self.redis is not None:
            self.redis.ping()
        self.reset()

    def bind(self):
        """Point the product's peewee database at the bench database (for a bench that runs
        product code in its own process); :meth:`close` closes its connections."""
        self._bound = product.db.bind(self.url)
        return self._bound

    def cursor(self):
        return self._conn.cursor()

    def truncate_jobs(self) -> None:
        """Empty the job tables (delivery logs included); Redis is left alone."""
        with self._conn.cursor() as cur:
            cur.execute("TRUNCATE notification_jobs CASCADE")

    def reset(self) -> None:
        """Empty the job tables and delete every key of the namespace (servers must be idle)."""
        self.truncate_jobs()
        self.purge_redis()

    def purge_redis(self) -> int:
        if self.redis is None:
            return 0
        keys = list(self.redis.scan_iter(match=f"{self.namespace}:*", count=500))
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])
        return len(keys)

    # What is on the broker (Dramatiq's Redis keys, in the bench's namespace).

    def waiting(self, queue: str) -> int:
        """Messages of ``queue`` no worker has fetched yet."""
        return self.redis.llen(f"{self.namespace}:{queue}")

    def pending_messages(self, queue: str) -> int:
        """Messages of ``queue`` not yet acknowledged: waiting, fetched, or delayed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(f"{self.namespace}:{queue}.msgs")
        pipe.hlen(f"{self.namespace}:{queue}.DQ.msgs")
        return sum(pipe.execute())

    def dead_messages(self, queue: str) -> int:
        return self.redis.zcard(f"{self.namespace}:{queue}.XQ")

    # Whose CPU time a bench counts, and what it ran on.

    def backend_pids(self) -> list[int]:
        """The PostgreSQL backends serving the bench database (not this script's own)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            )
            return [row[0] for row in cur.fetchall()]

    def wait_no_backends(self, timeout: float = 10.0) -> bool:
        """Wait until only this script's connection is left (others flushed their stats)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.backend_pids():
                return True
            time.sleep(0.05)
        return False

    def redis_pids(self) -> list[int]:
        """The Redis server's pid when it runs on this machine (it is shared: noisy)."""
        pid = self.redis.info("server").get("process_id")
        return [int(pid)] if pid and Path(f"/proc/{pid}").exists() else []

    def server_versions(self) -> dict:
        with self._conn.cursor() as cur:
            cur.execute("SHOW server_version")
            pg = cur.fetchone()[0]
        return {"postgresql": pg, "redis": self.redis.info("server").get("redis_version")}

    def close(self, *, drop: bool) -> None:
        """Delete the namespace's keys, close the connections and, with ``drop``, the database."""
        with contextlib.suppress(Exception):
            self.purge_redis()
        if self._bound is not None:
            with contextlib.suppress(Exception):
                self._bound.close_all()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        if drop:
            self.drop()

    def drop(self) -> None:
        try:
            admin = self.admin()
        except psycopg2.Error as exc:
            print(f"could not drop database {self.database}: {exc}", file=sys.stderr)
            return
        try:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            admin.close()


def families_sql(users: int, recipients: int) -> str:
    """SQL that adds ``users`` users, a group owned by each, and ``recipients`` recipients
    spread over the users; every id is ``md5('<kind>' || n)``, so a bench can name one."""
    return f"""
INSERT INTO users (id, created_at)
SELECT md5('user' || u)::uuid, now() FROM generate_series(1, {users}) u;
INSERT INTO groups (id, owner_id, name, created_at)
SELECT md5('group' || u)::uuid, md5('user' || u)::uuid, 'Family ' || u, now()
FROM generate_series(1, {users}) u;
INSERT INTO recipients (id, owner_id, name, email, created_at)
SELECT md5('recipient' || r)::uuid, md5('user' || (r % {users} + 1))::uuid, 'R' || r,
       'r' || r || '@example.com', now()
FROM generate_series(1, {recipients}) r;
"""
