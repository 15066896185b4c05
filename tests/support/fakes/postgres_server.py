"""A PostgreSQL server of the test's own (``initdb`` + ``pg_ctl``) on a free loopback port, to
stop and start at will.

The outage test stops this one, never the machine's shared server. PostgreSQL refuses to run
as root, so as root the cluster belongs to the ``postgres`` user and every command runs as it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.fakes.redis_server import free_port


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


class PostgresProcess:
    """``PostgresProcess().start()``; ``url`` is its ``postgres`` database, as ``postgres``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._bin = _bin_dir()
        self._dir: Path | None = None
        self.running = False

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a private server cannot be run here, or None when it can."""
        if _bin_dir() is None:
            return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres user to run initdb as"
        return None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresProcess:
        """Create the cluster on the first call, then start the server and wait until it is up."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="tribe-pg-"))
            if os.geteuid() == 0:
                user = pwd.getpwnam("postgres")
                os.chown(self._dir, user.pw_uid, user.pw_gid)
            self._run(
                "initdb", "-D", f"{self._dir}/data", "-U", "postgres", "-A", "trust", "--no-sync"
            )
        options = (
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", f"{self._dir}/data", "-o", options,
            "-l", f"{self._dir}/server.log", "-w", "-t", "30", "start",
        )  # fmt: skip
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server at once ("fast": open connections are cut), keeping its data."""
        if self.running:
            self._run("pg_ctl", "-D", f"{self._dir}/data", "-m", "fast", "-w", "stop")
            self.running = False

    def destroy(self) -> None:
        """Stop the server and delete its cluster."""
        try:
            self.stop()
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def log(self) -> str:
        path = self._dir / "server.log" if self._dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stdout}{result.stderr}{self.log()}"
            )
