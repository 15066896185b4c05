"""Child processes a bench starts and stops: each in its own session, its output in a log file,
every wait on it bounded."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common.paths import BENCH_DIR, ROOT
from common.safety import BenchError

GUNICORN_CONF = ROOT / "services" / "api" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment (else whatever is on PATH)."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (children of all its threads, recursively)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    todo += [int(p) for p in (task / "children").read_text().split()]
    return found


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.01,
    detail: Callable[[], str] | None = None,
):
    """Poll ``condition`` until it returns something true (returned), at most ``timeout`` s;
    past it a :class:`BenchError` names ``what`` and adds ``detail()`` (e.g. a log's tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            more = detail() if detail else ""
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}\n{more}")
        time.sleep(interval)


class Process:
    """A child process in its own session (so its whole group can be signalled), output to a
    log file; stopped with SIGTERM to the group, then SIGKILL."""

    def __init__(self, name: str, cmd: list[str], env: dict, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        """The process and everything below it."""
        return descendants(self.proc.pid) if self.proc.poll() is None else []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def wait_for(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        """Like :func:`wait_until`, failing at once if the process exits meanwhile."""

        def met():
            if not self.alive():
                raise BenchError(f"{self.name} exited\n{self.log_tail()}")
            return condition()

        wait_until(met, timeout, f"{self.name}: {what}", 0.05, self.log_tail)

    def stop(self, timeout: float = 25.0) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode


class Gunicorn(Process):
    """One gunicorn master (in its own session) serving ``app`` on 127.0.0.1, with the API's
    own ``services/api/gunicorn.conf.py``; ``bench/`` is on its Python path."""

    def __init__(self, name: str, app: str, env: dict, logdir: Path):
        self.port = free_port()
        cmd = [
            venv_bin("gunicorn"),
            "--config",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--pythonpath",
            str(BENCH_DIR),
            app,
        ]
        log_path = logdir / f"gunicorn-{name}.log"
        super().__init__(name, cmd, {**env, "PORT": str(self.port)}, log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for(self._listening, timeout, "gunicorn to listen")

    def _listening(self) -> bool:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        return False

    def pids(self) -> list[int]:
        """The master and its workers."""
        return descendants(self.proc.pid)

    def log_tail(self, chars: int = 4000) -> str:
        """The log's end without the access log's request lines."""
        text = self.log_text().splitlines()
        return "\n".join(line for line in text if '"POST ' not in line)[-chars:]
