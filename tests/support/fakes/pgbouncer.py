"""A real PgBouncer (Debian's ``pgbouncer``) of the test's own, in transaction mode on a free
loopback port, in front of the machine's PostgreSQL.

Transaction mode gives each transaction whichever server connection is free: what a session
left on one (a prepared statement, a ``SET``) is missing on the next, or collides with the same
left by another client. ``pool_size`` server connections per database and user (1 makes that
certain). PgBouncer refuses to run as root: as root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.support.fakes.redis_server import free_port


def pgbouncer_path() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )


class PgBouncer:
    """``PgBouncer(postgres_url).start()``; :meth:`url` is a database's URL through it."""

    def __init__(self, postgres_url: str, *, pool_size: int = 1):
        target = urlparse(postgres_url)
        self._server = (target.hostname or "127.0.0.1", target.port or 5432)
        self._user = target.username or "postgres"
        self.pool_size = pool_size
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="tribe-pgbouncer-"))
        self._process: subprocess.Popen | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{self._user}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 10.0) -> PgBouncer:
        host, port = self._server
        (self._dir / "users.txt").write_text(f'"{self._user}" ""\n')
        (self._dir / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self._dir}/users.txt
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = {self._dir}/pgbouncer.log
"""
        )
        command = [pgbouncer_path(), str(self._dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            for path in self._dir.iterdir():
                os.chown(path, user.pw_uid, user.pw_gid)
            command[1:1] = ["-u", "postgres"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self._process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen within {timeout} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)
