"""Run the real processes (gunicorn, dramatiq, tribe-dev) in tests, wait on them, and find
which process is which from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import requests

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run a command line tool to its end (a minute at most), its output captured as text."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


class Processes:
    """Started processes with their logs, stopped with SIGTERM (then SIGKILL) at the end."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self._log_dir = log_dir
        self._env = {"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", **env}
        self._running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str, cwd: Path = REPO, **extra_env) -> subprocess.Popen:
        log = open(self._log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**self._env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._running.append((name, process))
        return process

    def log(self, name: str) -> str:
        return (self._log_dir / f"{name}.log").read_text(errors="replace")

    def wait_healthy(self, url: str, name: str, timeout: float = 30.0) -> None:
        process = dict(self._running)[name]

        def healthy():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited {process.returncode}:\n{self.log(name)}")
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout=timeout, what=f"{name} at {url}", interval=0.1)

    def start_release_web_worker(
        self, port: int, *, threads: int = 2, ready_path: str = "/api/health"
    ) -> str:
        """The Procfile's ``release`` (waited for), ``web`` and ``worker`` (one process of
        ``threads`` threads, every queue); returns the API's base URL once it answers."""
        release = self.start("release", f"{BIN}/tribe-migrate")
        assert release.wait(60) == 0, self.log("release")
        self.start("web", f"{BIN}/gunicorn", "-c", "services/api/gunicorn.conf.py")
        self.start(
            "worker",
            *(f"{BIN}/dramatiq", "tribe_worker.main:broker", "--processes", "1"),
            *("--threads", str(threads), "--queues", "emails_urgent", "emails", "maintenance"),
        )
        base = f"http://127.0.0.1:{port}"
        self.wait_healthy(f"{base}{ready_path}", "web")
        return base

    def stop_all(self) -> None:
        for _, process in reversed(self._running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self._running):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self._running.clear()


def children_of(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid``, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return sorted(children)


def pid_of_connection(client: tuple[str, int], among: Iterable[int]) -> int | None:
    """Which of the processes ``among`` owns the TCP connection whose local end is ``client``.

    The fake SendGrid sees a request's client address; /proc tells whose socket it is.
    """
    port = client[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in among:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


def product_env(
    tmp_path: Path, *, database_url: str, redis_url: str, sendgrid_url: str, port: int, **extra
) -> dict[str, str]:
    """The environment of the product's processes in a test: APP_ENV=test, the test's secret
    and fake SendGrid, the API on ``port``, the worker's metrics on a free loopback port."""
    from tests.conftest import JWT_SECRET
    from tests.support.fakes.redis_server import free_port
    from tests.support.fakes.sendgrid import API_KEY

    return {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": JWT_SECRET,
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_HOST": sendgrid_url,
        "PORT": str(port),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(free_port()),
        "dramatiq_prom_db": str(tmp_path / "dramatiq-prom"),
        **extra,
    }
