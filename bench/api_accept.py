"""How fast does the API accept work? ``POST /api/notifications/send-email`` against two baselines.

Runs, in one go, three WSGI apps (``bench/bench_apps.py``) under gunicorn with the API's own
``services/api/gunicorn.conf.py`` (gthread, ``WEB_CONCURRENCY`` workers x ``GUNICORN_THREADS``
threads), each on a free loopback port, against the local PostgreSQL and Redis:

* ``ours``             - the real endpoint: bearer token, validation, job row, broker hand-over;
* ``bare_insert_send`` - bare Falcon: the same single INSERT into ``notification_jobs`` and one
                         Dramatiq send to queue ``emails``; no auth, no validation;
* ``bare_ok``          - bare Falcon: answers 202 with a small JSON, nothing else.

Each gets a warm-up, then ``--rounds`` timed rounds at ``--connections`` (8) keep-alive
connections and as many at 1 connection, the variants interleaved so a noisy neighbour hurts
all of them alike. Load comes from ``wrk`` (Debian package ``wrk``) or, without it, from a
small multi-process ``http.client`` client. Everything it creates is its own: a database
(``tribe_bench``, dropped at the end unless ``--keep-db``) and a Redis namespace (``tribe_bench``,
deleted after every round). Only loopback addresses are accepted.

Writes ``bench/results/api_accept-<UTC timestamp>.json`` and ``bench/results/api_accept.md``.

    .venv/bin/python bench/api_accept.py            # about 2.5 minutes
    .venv/bin/python bench/api_accept.py --quick    # about 40 seconds, for a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import ipaddress
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
GUNICORN_CONF = ROOT / "services" / "api" / "gunicorn.conf.py"
PATH = "/api/notifications/send-email"
QUEUE = "emails"

#: What every variant is sent: a valid send-email body (the bare apps ignore the token).
BODY = {
    "to": "grandma@example.com",
    "type": "system",
    "subject": "Bench",
    "templateData": {"name": "Grandma", "message": "A new photo of Ada is waiting for you."},
}

TARGET_THROUGHPUT_RATIO = 0.75
TARGET_P99_MS = 15.0

#: Whatever happens, no single load run lasts longer than this many seconds...
MAX_RUN_SECONDS = 120
#: ...nor sends more than this many requests per connection (Python client).
MAX_REQUESTS_PER_CONNECTION = 200_000


@dataclass(frozen=True)
class Variant:
    name: str
    app: str
    label: str


VARIANTS = (
    Variant("ours", "bench_apps:ours()", "ours: POST /api/notifications/send-email"),
    Variant("bare_insert_send", "bench_apps:bare_insert_send()", "bare Falcon: INSERT + send"),
    Variant("bare_ok", "bench_apps:bare_ok()", "bare Falcon: 202 only"),
)


class BenchError(Exception):
    pass


# --- arguments and safety -------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    p.add_argument("--database", default="tribe_bench", help="the bench's own database")
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument("--namespace", default="tribe_bench", help="the bench's own Redis namespace")
    p.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default 2)")
    p.add_argument("--threads", type=int, default=4, help="GUNICORN_THREADS (default 4)")
    p.add_argument("--connections", type=int, default=8, help="concurrent connections")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per variant")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per variant and load")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 1 round of 3 s")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where to write results")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.duration, args.rounds = 1.0, 3.0, 1
    if not 0 < args.duration <= MAX_RUN_SECONDS or not 0 <= args.warmup <= MAX_RUN_SECONDS:
        p.error(f"--duration and --warmup must be at most {MAX_RUN_SECONDS} seconds")
    if not 1 <= args.connections <= 256 or not 1 <= args.rounds <= 20:
        p.error("--connections must be 1..256 and --rounds 1..20")
    for name in ("postgres_url", "redis_url"):
        host = urlparse(getattr(args, name)).hostname
        if not _is_loopback(host):
            p.error(f"--{name.replace('_', '-')} must point at a loopback address, not {host!r}")
    if not args.database.replace("_", "").isalnum() or not args.namespace:
        p.error("--database must be a plain identifier")
    return args


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _single_run_lock(database: str):
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


# --- PostgreSQL and Redis -------------------------------------------------------------------


class Store:
    """The bench database and Redis namespace: create, count, empty, remove."""

    def __init__(self, admin_url: str, database: str, redis_url: str, namespace: str):
        self.admin_url = admin_url
        self.database = database
        self.url = admin_url.rsplit("/", 1)[0] + "/" + database
        self.namespace = namespace
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self._conn = None

    def create(self) -> None:
        from tribe_shared import db
        from tribe_shared.migrate import apply_migrations

        admin = psycopg2.connect(self.admin_url, connect_timeout=3)
        admin.autocommit = True
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

    def counts(self) -> dict:
        with self._conn.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM notification_jobs GROUP BY status")
            by_status = dict(cur.fetchall())
        return {
            "db_jobs": sum(by_status.values()),
            "db_jobs_by_status": by_status,
            "redis_waiting": self.redis.llen(f"{self.namespace}:{QUEUE}"),
        }

    def settled_counts(self, timeout: float = 5.0) -> dict:
        """Counts once requests still in flight when the client stopped have finished."""
        deadline = time.monotonic() + timeout
        last = self.counts()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.counts()
            if now == last:
                return now
            last = now
        return last

    def backend_pids(self) -> list[int]:
        """The PostgreSQL backends serving the bench database (not this script's own)."""
        with self._conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            )
            return [row[0] for row in cur.fetchall()]

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
                admin = psycopg2.connect(self.admin_url, connect_timeout=3)
            except psycopg2.Error as exc:
                print(f"could not drop database {self.database}: {exc}", file=sys.stderr)
                return
            admin.autocommit = True
            try:
                with admin.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                admin.close()


# --- CPU accounting -------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _process_ticks(pids) -> dict[int, int]:
    """utime + stime of each process, in clock ticks."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def _machine_busy_ticks() -> int:
    """Ticks all CPUs spent not idle (nor waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4]


def _children_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds used during a load run by the app, its database backends, Redis, the load
    generator, and everything else on the machine (other sessions: noise)."""

    def __init__(self, server: Server, store: Store):
        self._groups = lambda: {
            "app": server.pids(),
            "postgres": store.backend_pids(),
            "redis": store.redis_pids(),
        }

    def __enter__(self):
        groups = self._groups()
        self._before = _process_ticks(pid for pids in groups.values() for pid in pids)
        self._machine = _machine_busy_ticks()
        self._children = _children_seconds()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc):
        groups = self._groups()
        after = _process_ticks(pid for pids in groups.values() for pid in pids)
        self.wall = time.monotonic() - self._started
        self.seconds = {
            name: sum(after[p] - self._before.get(p, 0) for p in pids if p in after) / CLK_TCK
            for name, pids in groups.items()
        }
        self.seconds["load_generator"] = _children_seconds() - self._children
        busy = (_machine_busy_ticks() - self._machine) / CLK_TCK
        self.seconds["other"] = max(0.0, busy - sum(self.seconds.values()))
        self.machine_busy = busy / self.wall / len(os.sched_getaffinity(0))
        return False


# --- gunicorn -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One gunicorn master (in its own session) serving a variant on 127.0.0.1."""

    def __init__(self, variant: Variant, env: dict, logdir: Path):
        self.variant = variant
        self.port = _free_port()
        self.log_path = logdir / f"gunicorn-{variant.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [
            str(gunicorn) if gunicorn.exists() else "gunicorn",
            "--config",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--pythonpath",
            str(BENCH_DIR),
            variant.app,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**env, "PORT": str(self.port)},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.variant.name}: gunicorn exited\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        raise BenchError(f"{self.variant.name}: gunicorn not listening\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The master and its workers."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            return [self.proc.pid, *(int(p) for p in children.read_text().split())]
        return [self.proc.pid]

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(line for line in text if '"POST ' not in line)[-4000:]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def request_once(port: int, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", PATH, body=json.dumps(BODY), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, {"raw": raw[:300].decode(errors="replace")}
    finally:
        conn.close()


# --- load generators ------------------------------------------------------------------------

WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%.0f,"requests":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p99_9":%.0f}}\\n',
    summary.duration, summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


class WrkClient:
    name = "wrk"

    def __init__(self, headers: dict, workdir: Path):
        self.binary = shutil.which("wrk")
        self.script = workdir / "post.lua"
        lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(BODY)}]==]"]
        lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items()]
        self.script.write_text("\n".join(lines) + "\n" + WRK_DONE)

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).splitlines()[0].strip()

    def run(self, port: int, connections: int, seconds: float) -> dict:
        cmd = [
            self.binary,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(self.script),
            f"http://127.0.0.1:{port}{PATH}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if out.returncode != 0 or line is None:
            raise BenchError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        errors = data["errors"]
        lat = data["latency_us"]
        return {
            "seconds": data["duration_us"] / 1e6,
            "responses": int(data["requests"]),
            "non_2xx": int(errors["status"]),
            "socket_errors": int(
                errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
            ),
            "latency_ms": {k: round(v / 1000, 3) for k, v in lat.items()},
        }


def _python_connection(args) -> tuple[int, int, int, list[float]]:
    """One keep-alive connection posting until ``stop_at``: (responses, non-2xx, errors, lat)."""
    port, headers, start_at, stop_at = args
    body = json.dumps(BODY).encode()
    latencies: list[float] = []
    non_2xx = errors = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    perf = time.perf_counter
    while time.monotonic() < stop_at and len(latencies) < MAX_REQUESTS_PER_CONNECTION:
        began = perf()
        try:
            conn.request("POST", PATH, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            continue
        latencies.append((perf() - began) * 1000)
        if not 200 <= resp.status < 300:
            non_2xx += 1
    conn.close()
    return len(latencies), non_2xx, errors, latencies


def _client_process_init() -> None:
    """Client processes leave Ctrl-C to the parent and die quietly when it ends the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class PythonClient:
    """Fallback: one process per connection, raw keep-alive ``http.client`` connections."""

    name = "python-http.client"

    def __init__(self, headers: dict):
        self.headers = {**headers, "Content-Type": "application/json"}

    def version(self) -> str:
        return f"http.client, Python {platform.python_version()}"

    def run(self, port: int, connections: int, seconds: float) -> dict:
        start_at = time.monotonic() + 0.5
        stop_at = start_at + seconds
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(connections, initializer=_client_process_init) as pool:
            work = [(port, self.headers, start_at, stop_at)] * connections
            parts = pool.map_async(_python_connection, work).get(timeout=seconds + 30)
        latencies = sorted(x for part in parts for x in part[3])
        if not latencies:
            raise BenchError("the Python client got no response at all")

        def pct(p: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))], 3)

        return {
            "seconds": seconds,
            "responses": sum(p[0] for p in parts),
            "non_2xx": sum(p[1] for p in parts),
            "socket_errors": sum(p[2] for p in parts),
            "latency_ms": {
                "mean": round(statistics.fmean(latencies), 3),
                "max": round(latencies[-1], 3),
                "p50": pct(50),
                "p90": pct(90),
                "p99": pct(99),
                "p99_9": pct(99.9),
            },
        }


# --- the run --------------------------------------------------------------------------------


def machine_info(client, store: Store, args) -> dict:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

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
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": git or None,
        "client": f"{client.name} ({client.version()})",
        "gunicorn": {
            "config": str(GUNICORN_CONF.relative_to(ROOT)),
            "worker_class": "gthread",
            "workers": args.workers,
            "threads": args.threads,
        },
        "packages": {
            d: version(d)
            for d in (
                "gunicorn",
                "falcon",
                "peewee",
                "psycopg2-binary",
                "dramatiq",
                "redis",
                "pydantic",
                "spectree",
                "pyjwt",
            )
        },
        **store.server_versions(),
    }


def run_load(client, store: Store, server: Server, connections: int, seconds: float) -> dict:
    before = store.counts()
    with CpuMeter(server, store) as cpu:
        result = client.run(server.port, connections, seconds)
    after = store.settled_counts()
    accepted = result["responses"] - result["non_2xx"]
    served = max(1, result["responses"])
    result.update(
        cpu_us_per_request={k: round(v * 1e6 / served) for k, v in cpu.seconds.items()},
        machine_busy_pct=round(100 * cpu.machine_busy, 1),
        other_processes_cores=round(cpu.seconds["other"] / cpu.wall, 2),
        variant=server.variant.name,
        connections=connections,
        accepted=accepted,
        rps=round(accepted / result["seconds"], 1),
        db_jobs_added=after["db_jobs"] - before["db_jobs"],
        db_jobs_by_status=after["db_jobs_by_status"],
        redis_waiting_added=after["redis_waiting"] - before["redis_waiting"],
    )
    store.reset()
    return result


def sanity_check(server: Server, store: Store, headers: dict) -> dict:
    """One request by hand: a 202, and for ours a ``queued`` job with its message in Redis."""
    status, body = request_once(server.port, headers)
    counts = store.settled_counts()
    store.reset()
    if status != 202:
        raise BenchError(f"{server.variant.name}: expected 202, got {status}: {body}")
    if server.variant.name == "ours" and body.get("status") != "queued":
        raise BenchError(f"ours: the job was not handed to the broker: {body}")
    expected = 0 if server.variant.name == "bare_ok" else 1
    if counts["db_jobs"] != expected or counts["redis_waiting"] != expected:
        raise BenchError(f"{server.variant.name}: expected {expected} job(s) stored, got {counts}")
    return {"status": status, "body": body}


def summarize(runs: list[dict]) -> dict:
    table: dict[str, dict] = {}
    for variant in VARIANTS:
        table[variant.name] = {}
        for conns in sorted({r["connections"] for r in runs}, reverse=True):
            mine = [r for r in runs if r["variant"] == variant.name and r["connections"] == conns]
            if not mine:
                continue
            table[variant.name][f"c{conns}"] = {
                "rps_median": round(statistics.median(r["rps"] for r in mine), 1),
                "rps_min": min(r["rps"] for r in mine),
                "rps_max": max(r["rps"] for r in mine),
                "p50_ms_median": round(statistics.median(r["latency_ms"]["p50"] for r in mine), 2),
                "p90_ms_median": round(statistics.median(r["latency_ms"]["p90"] for r in mine), 2),
                "p99_ms_median": round(statistics.median(r["latency_ms"]["p99"] for r in mine), 2),
                "p99_ms_max": round(max(r["latency_ms"]["p99"] for r in mine), 2),
                "cpu_us_per_request_median": {
                    k: round(statistics.median(r["cpu_us_per_request"][k] for r in mine))
                    for k in mine[0]["cpu_us_per_request"]
                },
                "machine_busy_pct_median": round(
                    statistics.median(r["machine_busy_pct"] for r in mine), 1
                ),
                "other_processes_cores_max": max(r["other_processes_cores"] for r in mine),
                "accepted": sum(r["accepted"] for r in mine),
                "non_2xx": sum(r["non_2xx"] for r in mine),
                "socket_errors": sum(r["socket_errors"] for r in mine),
                "rounds": len(mine),
            }
    return table


def verdict(table: dict, connections: int) -> dict:
    key = f"c{connections}"
    ours = table["ours"][key]
    ratio = ours["rps_median"] / table["bare_insert_send"][key]["rps_median"]
    return {
        "throughput_ratio_ours_over_bare_insert_send": round(ratio, 3),
        "throughput_ratio_target": TARGET_THROUGHPUT_RATIO,
        "throughput_ratio_ok": ratio >= TARGET_THROUGHPUT_RATIO,
        "throughput_ratio_ours_over_bare_ok": round(
            ours["rps_median"] / table["bare_ok"][key]["rps_median"], 3
        ),
        "ours_p99_ms": ours["p99_ms_median"],
        "ours_p99_target_ms": TARGET_P99_MS,
        "ours_p99_ok": ours["p99_ms_median"] < TARGET_P99_MS,
    }


def render_markdown(report: dict) -> str:
    m, cfg, v, table = report["machine"], report["config"], report["verdict"], report["table"]
    c = cfg["connections"]
    ok = {True: "**met**", False: "**missed**"}
    lines = [
        "# API accept benchmark (latest run)",
        "",
        f"Run {report['started_at']} by `{report['command']}`; raw figures in "
        f"`{report['json_file']}`.",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), load average at start "
        f"{' / '.join(map(str, m['loadavg_at_start']))}, {m['platform']}",
        f"- Python {m['python']}, gunicorn {m['packages']['gunicorn']} "
        f"(`{m['gunicorn']['config']}`: gthread, {m['gunicorn']['workers']} workers x "
        f"{m['gunicorn']['threads']} threads, access log on), falcon {m['packages']['falcon']}, "
        f"peewee {m['packages']['peewee']}, dramatiq {m['packages']['dramatiq']}",
        f"- PostgreSQL {m['postgresql']}, Redis {m['redis']}, all on 127.0.0.1; git {m['git']}",
        f"- load: {m['client']}; warm-up {cfg['warmup_s']} s per variant, then {cfg['rounds']} "
        f"interleaved round(s) of {cfg['duration_s']} s per variant at {c} and at 1 connection; "
        "figures are medians over rounds (p99 max = worst round)",
        "",
        f"| variant | req/s @{c} | p50 ms @{c} | p99 ms @{c} | p99 max @{c} "
        "| req/s @1 | p50 ms @1 | p99 ms @1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        hi, lo = table[variant.name][f"c{c}"], table[variant.name].get("c1", {})
        lines.append(
            f"| {variant.label} | {hi['rps_median']:.0f} | {hi['p50_ms_median']:.2f} "
            f"| {hi['p99_ms_median']:.2f} | {hi['p99_ms_max']:.2f} "
            f"| {lo.get('rps_median', 0):.0f} | {lo.get('p50_ms_median', 0):.2f} "
            f"| {lo.get('p99_ms_median', 0):.2f} |"
        )
    ratio = v["throughput_ratio_ours_over_bare_insert_send"]
    lines += [
        "",
        f"- throughput ours / bare INSERT + send @{c}: **{ratio:.2f}** "
        f"(target >= {v['throughput_ratio_target']}: {ok[v['throughput_ratio_ok']]}); "
        f"ours / bare 202 @{c}: {v['throughput_ratio_ours_over_bare_ok']:.2f}",
        f"- our p99 @{c}: **{v['ours_p99_ms']:.2f} ms** "
        f"(target < {v['ours_p99_target_ms']:.0f} ms: {ok[v['ours_p99_ok']]})",
        "",
        f"CPU time per request @{c} (median over rounds, in microseconds; with {m['nproc']} "
        f"CPUs saturated, req/s is at most {m['nproc']} s / (sum + load generator)):",
        "",
        "| variant | gunicorn (app) | PostgreSQL backends | Redis | sum | load generator "
        "| machine busy | other processes (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        hi = table[variant.name][f"c{c}"]
        cpu = hi["cpu_us_per_request_median"]
        lines.append(
            f"| {variant.label} | {cpu['app']} | {cpu['postgres']} | {cpu['redis']} "
            f"| {cpu['app'] + cpu['postgres'] + cpu['redis']} | {cpu['load_generator']} "
            f"| {hi['machine_busy_pct_median']:.0f}% "
            f"| {hi['other_processes_cores_max']:.2f} cores |"
        )
    lines += [
        "",
        "`other processes`: CPU used meanwhile by everything outside the bench (other sessions, "
        "the kernel), i.e. the noise; Redis is the machine's shared server.",
        "",
        "Checks: every accepted request of ours and of the bare INSERT + send app left exactly "
        "one job row and one waiting message (counted per round, then removed):",
        "",
        "| variant | connections | round | accepted | non-2xx | socket errors | rows added "
        "| messages added | rows by status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['variant']} | {r['connections']} | {r['round']} | {r['accepted']} "
            f"| {r['non_2xx']} | {r['socket_errors']} | {r['db_jobs_added']} "
            f"| {r['redis_waiting_added']} | {r['db_jobs_by_status'] or '-'} |"
        )
    lines += [
        "",
        "Rows/messages may exceed `accepted` by up to the connection count: requests in flight "
        "when the client stops are served but not counted.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C and SIGTERM both end the run through the cleanup below (also when started in the
    # background, where a shell leaves SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    lock = _single_run_lock(args.database)
    if lock is None:
        print(f"another api_accept run is using {args.database!r}: wait for it", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")

    from tribe_api.auth import mint_token

    jwt_secret = "bench-" + secrets.token_hex(24)
    token = mint_token(jwt_secret, user_id=uuid.uuid4(), ttl=timedelta(hours=2))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    if args.client in ("auto", "wrk") and shutil.which("wrk"):
        client_kind = "wrk"
    elif args.client == "wrk":
        print("wrk not found: apt-get install -y wrk (or --client python)", file=sys.stderr)
        return 2
    else:
        client_kind = "python"
        print("wrk not found: using the Python client (slower, it shares the CPUs)")

    workdir = Path(tempfile.mkdtemp(prefix="tribe-bench-"))
    client = WrkClient(headers, workdir) if client_kind == "wrk" else PythonClient(headers)
    store = Store(args.postgres_url, args.database, args.redis_url, args.namespace)
    servers: list[Server] = []
    failed = True
    try:
        store.create()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "WEB_"))},
            "APP_ENV": "production",
            "DATABASE_URL": store.url,
            "REDIS_URL": args.redis_url,
            "JWT_SECRET": jwt_secret,
            "SENDGRID_API_KEY": "bench-unused",
            "SENDGRID_API_HOST": "http://127.0.0.1:9",
            "WEB_CONCURRENCY": str(args.workers),
            "GUNICORN_THREADS": str(args.threads),
            "TRIBE_BENCH_NAMESPACE": args.namespace,
            "REDIS_NAMESPACE": args.namespace,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("GUNICORN_CMD_ARGS", None)
        info = machine_info(client, store, args)
        print(
            f"{info['nproc']} CPUs, Python {info['python']}, load {info['loadavg_at_start']}, "
            f"client {info['client']}"
        )
        for variant in VARIANTS:
            servers.append(Server(variant, env, workdir))
        for server in servers:
            server.wait_ready()
            sanity_check(server, store, headers)
            print(f"  {server.variant.name}: ready on 127.0.0.1:{server.port}, sanity check ok")

        for server in servers:
            if args.warmup:
                client.run(server.port, args.connections, args.warmup)
                store.settled_counts()
                store.reset()
        print(f"  warm-up done ({args.warmup} s each)")

        runs = []
        for conns in (args.connections, 1):
            for rnd in range(args.rounds):
                # Rotate the order each round so no variant always runs first or last.
                order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
                for server in order:
                    result = run_load(client, store, server, conns, args.duration)
                    result["round"] = rnd + 1
                    runs.append(result)
                    print(
                        f"  c={conns:<3} round {rnd + 1} {server.variant.name:<17} "
                        f"{result['rps']:>8.1f} req/s  p50 {result['latency_ms']['p50']:.2f} ms"
                        f"  p99 {result['latency_ms']['p99']:.2f} ms"
                        f"  non-2xx {result['non_2xx']}  errors {result['socket_errors']}"
                    )

        info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        table = summarize(runs)
        args.results.mkdir(parents=True, exist_ok=True)
        json_path = args.results / f"api_accept-{stamp}.json"
        report = {
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "command": " ".join(["bench/api_accept.py", *(argv or sys.argv[1:])]),
            "json_file": str(json_path.relative_to(ROOT))
            if json_path.is_relative_to(ROOT)
            else str(json_path),
            "machine": info,
            "config": {
                "connections": args.connections,
                "warmup_s": args.warmup,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "database": args.database,
                "redis_namespace": args.namespace,
                "body": BODY,
            },
            "variants": {v.name: {"app": v.app, "label": v.label} for v in VARIANTS},
            "table": table,
            "verdict": verdict(table, args.connections),
            "runs": runs,
        }
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        md = render_markdown(report)
        (args.results / "api_accept.md").write_text(md)
        print()
        print(md)
        failed = False
        return 0
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, cleaning up", file=sys.stderr)
        failed = False
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in servers:
            server.stop()
        store.close(drop=not args.keep_db)
        if failed:
            print(f"gunicorn logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
