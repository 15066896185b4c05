"""Helpers shared by the benchmarks in ``bench/`` (not part of the product, not imported by tests).

* safety: loopback-only URLs, one run at a time per database, Ctrl-C/SIGTERM through cleanup;
* :class:`BenchStore`: the bench's own PostgreSQL database (created, migrated, dropped) and Redis
  namespace (every key deleted);
* CPU accounting per process group from ``/proc`` (:class:`CpuMeter`, :func:`cpu_sample`);
* :class:`Gunicorn`: one gunicorn master with the API's own config on a free 127.0.0.1 port;
* machine/package information and result files.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import ipaddress
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
GUNICORN_CONF = ROOT / "services" / "api" / "gunicorn.conf.py"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class BenchError(Exception):
    pass


# --- safety -----------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def single_run_lock(database: str):
    """An exclusive lock for the run (two runs would share, and drop, the same database)."""
    import fcntl

    handle = open(Path(tempfile.gettempdir()) / f"tribe-{database}.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle  # held until the process exits


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def trap_signals() -> None:
    """Ctrl-C and SIGTERM both end the run through the caller's cleanup (also when started in
    the background, where a shell leaves SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def ignore_signals() -> None:
    """While cleaning up: a second Ctrl-C must not cut the cleanup short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def restore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --- PostgreSQL and Redis ---------------------------------------------------------------------


class BenchStore:
    """The bench database and Redis namespace: create, empty, remove."""

    def __init__(self, admin_url: str, database: str, redis_url: str, namespace: str):
        self.admin_url = admin_url
        self.database = database
        self.url = admin_url.rsplit("/", 1)[0] + "/" + database
        self.namespace = namespace
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self._conn = None

    def admin(self):
        """An autocommit connection to the admin database (close it)."""
        conn = psycopg2.connect(self.admin_url, connect_timeout=3)
        conn.autocommit = True
        return conn

    def create(self) -> None:
        from tribe_shared import db
        from tribe_shared.migrate import apply_migrations

        admin = self.admin()
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            admin.close()
        database = db.bind(self.url)
        with database.connection_context():
            apply_migrations(database)
        database.close_all()
        self._conn = psycopg2.connect(self.url, connect_timeout=3)
        self._conn.autocommit = True
        self.redis.ping()
        self.reset()

    def cursor(self):
        return self._conn.cursor()

    def reset(self) -> None:
        """Empty the job table and delete every key of the namespace (servers must be idle)."""
        with self._conn.cursor() as cur:
            cur.execute("TRUNCATE notification_jobs CASCADE")
        self.purge_redis()

    def purge_redis(self) -> int:
        keys = list(self.redis.scan_iter(match=f"{self.namespace}:*", count=500))
        for start in range(0, len(keys), 500):
            self.redis.delete(*keys[start : start + 500])
        return len(keys)

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
        with contextlib.suppress(Exception):
            self.purge_redis()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        if drop:
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


# --- CPU accounting ---------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_ticks(pids: Iterable[int]) -> dict[int, int]:
    """utime + stime of each process, in clock ticks."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def machine_busy_ticks() -> int:
    """Ticks all CPUs spent not idle (nor waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]


def children_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class CpuSample:
    """CPU ticks of each process of each group, and of the whole machine, at one instant."""

    at: float
    groups: dict[str, dict[int, int]]
    machine: int


def cpu_sample(groups: dict[str, Iterable[int]]) -> CpuSample:
    return CpuSample(
        at=time.monotonic(),
        groups={name: process_ticks(pids) for name, pids in groups.items()},
        machine=machine_busy_ticks(),
    )


def cpu_between(before: CpuSample, after: CpuSample) -> dict:
    """CPU seconds each group used between two samples (a process born in between counts from
    its birth), ``other`` = the rest of the machine (other sessions: noise), and
    ``machine_busy`` (0..1 of all CPUs)."""
    wall = max(1e-9, after.at - before.at)
    seconds = {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        seconds[name] = sum(ticks - then.get(pid, 0) for pid, ticks in now.items()) / CLK_TCK
    busy = (after.machine - before.machine) / CLK_TCK
    seconds["other"] = max(0.0, busy - sum(seconds.values()))
    return {
        "wall_s": wall,
        "seconds": seconds,
        "machine_busy": busy / wall / cpu_count(),
        "other_cores": seconds["other"] / wall,
    }


class CpuMeter:
    """CPU seconds used during a block by each process group (``groups()`` names them, read at
    entry and exit), by the children this process reaped meanwhile (``children_label``, e.g.
    the load generator), and by everything else on the machine (``other``: noise)."""

    def __init__(
        self,
        groups: Callable[[], dict[str, list[int]]],
        children_label: str | None = "load_generator",
    ):
        self._groups = groups
        self._children_label = children_label

    def __enter__(self):
        groups = self._groups()
        self._before = process_ticks(pid for pids in groups.values() for pid in pids)
        self._machine = machine_busy_ticks()
        self._children = children_seconds()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc):
        groups = self._groups()
        after = process_ticks(pid for pids in groups.values() for pid in pids)
        self.wall = time.monotonic() - self._started
        self.seconds = {
            name: sum(after[p] - self._before.get(p, 0) for p in pids if p in after) / CLK_TCK
            for name, pids in groups.items()
        }
        if self._children_label:
            self.seconds[self._children_label] = children_seconds() - self._children
        busy = (machine_busy_ticks() - self._machine) / CLK_TCK
        self.seconds["other"] = max(0.0, busy - sum(self.seconds.values()))
        self.machine_busy = busy / self.wall / cpu_count()
        return False


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment (else whatever is on PATH)."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name}: gunicorn exited\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name}: gunicorn not listening\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The master and its workers."""
        return descendants(self.proc.pid)

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_text().splitlines()
        return "\n".join(line for line in text if '"POST ' not in line)[-chars:]


# --- machine information and results ----------------------------------------------------------


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_basics(packages: Iterable[str]) -> dict:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    git = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": git or None,
        "packages": {d: package_version(d) for d in packages},
    }


def relative(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
