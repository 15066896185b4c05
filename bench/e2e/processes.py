"""The processes of the run beside the API: the fakes (SendGrid, Twilio), the Dramatiq workers."""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common.paths import BENCH_DIR
from common.processes import Process, free_port, venv_bin


class FakeProvider(Process):
    """A bench fake (``bench/fake_sendgrid.py`` by default, or ``bench/fake_twilio.py``) in its
    own process, and a client for its control API; ``env`` holds its credentials."""

    def __init__(self, env: dict, logdir: Path, name: str = "fake_sendgrid"):
        self.port = free_port()
        cmd = [
            sys.executable,
            str(BENCH_DIR / f"{name}.py"),
            "--port",
            str(self.port),
            "--parent-pid",
            str(os.getpid()),
        ]
        env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        super().__init__(name, cmd, env, logdir / f"{name}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 15.0) -> None:
        self.wait_for(lambda: "LISTENING" in self.log_text(), timeout, "to listen")

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body or {}) if method == "POST" else None)
            resp = conn.getresponse()
            return json.loads(resp.read())
        finally:
            conn.close()

    def stats(self) -> dict:
        """Requests, personalizations and duplicate job ids since the last :meth:`configure`."""
        return self._call("GET", "/__bench/stats")

    def configure(self, delay_ms: float) -> None:
        """Answer after ``delay_ms`` from now on, counting from zero."""
        self._call("POST", "/__bench/config", {"delay_ms": delay_ms})
        self._call("POST", "/__bench/reset")


class Workers(Process):
    """``dramatiq <module> --processes P --threads T --queues ...`` in its own session;
    ``path`` is put on the workers' Python path."""

    def __init__(
        self,
        name: str,
        module: str,
        queues: Sequence[str],
        env: dict,
        size: tuple[int, int],
        logdir: Path,
        path: Path | None = None,
    ):
        processes, threads = size
        cmd = [venv_bin("dramatiq"), module]
        if path is not None:
            cmd += ["--path", str(path)]
        cmd += ["--processes", str(processes), "--threads", str(threads)]
        cmd += ["--queues", *queues]
        self.processes = processes
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        super().__init__(name, cmd, env, logdir / f"{name}.log")

    def ready_count(self) -> int:
        return self.log_text().count("Worker process is ready for action.")

    def wait_ready(self, timeout: float) -> None:
        self.wait_for(lambda: self.ready_count() >= self.processes, timeout, "workers ready")
