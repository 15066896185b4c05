"""End to end: email jobs through the real API, the real workers and a fake SendGrid.

In one run, against the local PostgreSQL and Redis, with the rate limit lifted
(``EMAIL_RATE_LIMIT_PER_SECOND`` = 1e6) and the workers exactly as the Procfile runs them
(``dramatiq tribe_worker.main:broker --processes 2 --threads 8 --queues emails_urgent emails
maintenance``), their SendGrid client pointed at a lean fake (``bench/fake_sendgrid.py``, its
own process):

1. ``noop``        - baseline: a bare Dramatiq no-op actor (``bench/noop_worker.py``) on the
                     same Redis, same processes x threads: N messages enqueued, then the workers
                     started and the drain timed -> messages/s;
2. ``individual``  - N emails with different content (so none are batched) accepted through
                     ``POST /api/notifications/send-bulk-email`` with the workers stopped, then
                     the workers started and timed until every job is ``sent`` with its
                     delivery-log row -> emails/s; PostgreSQL activity per email from
                     ``pg_stat_database`` deltas;
3. ``census``      - the same on a smaller batch with ``log_statement = 'all'`` for the bench
                     database only: every SQL statement (BEGIN/COMMIT included) the workers send,
                     counted per email from the server log (skipped if the log is unreadable);
4. ``slow``        - the fake answers after 50 ms; workers running and warm: 100 individual
                     emails accepted in one request, timed from the request to the last job
                     ``sent`` and recorded;
5. ``bulk``        - 10,000 emails with identical content (10 requests of 1,000: batched into
                     personalizations, at most 1,000 per SendGrid request), workers running,
                     timed from the first request to the last job ``sent`` and recorded.

Everything it creates is its own and removed at the end, also on error or Ctrl-C: the database
``tribe_bench_e2e`` (dropped unless ``--keep-db``), the Redis namespace ``tribe_bench_e2e`` (every
key deleted), the processes (each in its own session, SIGTERM then SIGKILL). Only loopback
addresses are accepted; every wait is bounded (``--timeout``).

Writes ``bench/results/e2e_email-<UTC timestamp>.json`` and ``bench/results/e2e_email.md``.

    .venv/bin/python bench/e2e_email.py            # about 2 minutes
    .venv/bin/python bench/e2e_email.py --quick    # smaller batches, about 1 minute
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import dramatiq
from common import (
    BENCH_DIR,
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    RESULTS_DIR,
    ROOT,
    BenchError,
    BenchStore,
    Gunicorn,
    Process,
    cpu_between,
    cpu_sample,
    free_port,
    ignore_signals,
    is_loopback,
    machine_basics,
    relative,
    restore_signals,
    single_run_lock,
    trap_signals,
    venv_bin,
)
from dramatiq.brokers.redis import RedisBroker

BULK_PATH = "/api/notifications/send-bulk-email"
#: The queue and actor of ``bench/noop_worker.py`` (not imported here: it builds its broker from
#: the environment at import, as the dramatiq CLI wants).
NOOP_QUEUE = NOOP_ACTOR = "bench_noop"
EMAILS_QUEUE = "emails"
WORKER_QUEUES = ("emails_urgent", "emails", "maintenance")
#: Most emails the API takes in one send-bulk-email request.
BULK_MAX = 1000

TARGET_INDIVIDUAL_PER_S = 500.0
TARGET_SLOW_S = 1.0
TARGET_BULK_S = 10.0

PACKAGES = (
    "gunicorn",
    "falcon",
    "peewee",
    "psycopg2-binary",
    "dramatiq",
    "redis",
    "sendgrid",
    "python-http-client",
    "jinja2",
    "pydantic",
)

#: The statement census reads the server's log: where Debian's PostgreSQL writes it.
PG_LOG_GLOB = "/var/log/postgresql/postgresql-*-main.log"


# --- arguments --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    p.add_argument("--database", default="tribe_bench_e2e", help="the bench's own database")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    p.add_argument("--namespace", default="tribe_bench_e2e", help="the bench's Redis namespace")
    p.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=8, help="threads per worker process (8)")
    p.add_argument("--api-workers", type=int, default=2, help="WEB_CONCURRENCY of the API")
    p.add_argument("--api-threads", type=int, default=4, help="GUNICORN_THREADS of the API")
    p.add_argument("--noop-messages", type=int, default=20_000, help="baseline messages")
    p.add_argument("--emails", type=int, default=3_000, help="individual emails (phase 2)")
    p.add_argument("--census-emails", type=int, default=500, help="0 skips the census")
    p.add_argument("--slow-emails", type=int, default=100, help="emails per slow round")
    p.add_argument("--slow-delay-ms", type=float, default=50.0, help="fake's answer delay")
    p.add_argument("--slow-rounds", type=int, default=3, help="rounds of the slow phase")
    p.add_argument("--bulk-emails", type=int, default=10_000, help="identical emails (phase 5)")
    p.add_argument("--bulk-delay-ms", type=float, default=0.0, help="fake's delay for bulk")
    p.add_argument("--timeout", type=float, default=120.0, help="longest wait of any phase (s)")
    p.add_argument("--pg-log", help=f"PostgreSQL server log for the census ({PG_LOG_GLOB})")
    p.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy binary: profile the workers of phase 2 (only threads holding the GIL)",
    )
    p.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    p.add_argument("--quick", action="store_true", help="smaller batches, one slow round")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where to write results")
    args = p.parse_args(argv)
    if args.quick:
        args.noop_messages, args.emails, args.census_emails = 5_000, 1_000, 200
        args.slow_rounds, args.bulk_emails = 1, 3_000
    for name in ("postgres_url", "redis_url"):
        host = urlparse(getattr(args, name)).hostname
        if not is_loopback(host):
            p.error(f"--{name.replace('_', '-')} must point at a loopback address, not {host!r}")
    if not args.database.replace("_", "").isalnum():
        p.error("--database must be a plain identifier")
    if not args.namespace.replace("_", "").isalnum():
        p.error("--namespace must be a plain identifier")
    if not 1 <= args.processes <= 8 or not 1 <= args.threads <= 64:
        p.error("--processes must be 1..8 and --threads 1..64")
    limits = {
        "noop_messages": 200_000,
        "emails": 50_000,
        "census_emails": 5_000,
        "slow_emails": BULK_MAX,
        "bulk_emails": 100_000,
    }
    for name, most in limits.items():
        if not 0 <= getattr(args, name) <= most:
            p.error(f"--{name.replace('_', '-')} must be 0..{most}")
    if args.emails < 1 or args.slow_emails < 1 or args.bulk_emails < 1 or args.noop_messages < 1:
        p.error("every batch needs at least one message")
    if not 1 <= args.slow_rounds <= 10 or not 5 <= args.timeout <= 600:
        p.error("--slow-rounds must be 1..10 and --timeout 5..600")
    return args


# --- the pieces -------------------------------------------------------------------------------


class Store(BenchStore):
    """The bench database and namespace, plus what the phases read from them."""

    def truncate(self) -> None:
        """Empty the job tables, leaving Redis alone (workers may be running)."""
        with self.cursor() as cur:
            cur.execute("TRUNCATE notification_jobs CASCADE")

    def pending_messages(self, queue: str) -> int:
        """Messages of ``queue`` not yet acknowledged: waiting, fetched, or delayed."""
        ns = self.namespace
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(f"{ns}:{queue}.msgs")
        pipe.hlen(f"{ns}:{queue}.DQ.msgs")
        return sum(pipe.execute())

    def dead_messages(self, queue: str) -> int:
        return self.redis.zcard(f"{self.namespace}:{queue}.XQ")

    def waiting(self, queue: str) -> int:
        return self.redis.llen(f"{self.namespace}:{queue}")

    def jobs_by_status(self) -> dict[str, int]:
        with self.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM notification_jobs GROUP BY status")
            return dict(cur.fetchall())

    def outcome(self, job_ids: list[str] | None = None) -> dict:
        """Statuses, log rows and timings (epoch seconds) of the jobs (all when None)."""
        where, params = ("WHERE j.id = ANY(%s::uuid[])", (job_ids,)) if job_ids else ("", ())
        with self.cursor() as cur:
            cur.execute(
                f"""
                SELECT count(*),
                       count(*) FILTER (WHERE j.status = 'sent'),
                       count(*) FILTER (WHERE j.status = 'sent' AND EXISTS (
                           SELECT 1 FROM notification_delivery_logs l
                           WHERE l.job_id = j.id AND l.status = 'sent')),
                       extract(epoch FROM min(j.claimed_at)),
                       extract(epoch FROM max(j.processed_at)),
                       max(j.attempts),
                       sum(j.retry_count)
                FROM notification_jobs j {where}
                """,
                params,
            )
            total, sent, recorded, first_claim, last_done, attempts, retries = cur.fetchone()
            cur.execute(
                f"""
                SELECT count(*), count(DISTINCT l.job_id), count(DISTINCT l.provider_message_id)
                FROM notification_delivery_logs l
                {"WHERE l.job_id = ANY(%s::uuid[])" if job_ids else ""}
                """,
                params,
            )
            log_rows, logged_jobs, provider_calls = cur.fetchone()
            cur.execute(
                f"SELECT j.status, count(*) FROM notification_jobs j {where} GROUP BY j.status",
                params,
            )
            by_status = dict(cur.fetchall())
        return {
            "jobs": total,
            "sent": sent,
            "sent_and_logged": recorded,
            "by_status": by_status,
            "log_rows": log_rows,
            "logged_jobs": logged_jobs,
            "provider_message_ids": provider_calls,
            "max_attempts": attempts,
            "retries": int(retries or 0),
            "first_claimed_at": float(first_claim) if first_claim is not None else None,
            "last_processed_at": float(last_done) if last_done is not None else None,
        }

    def sent_and_logged(self, job_ids: list[str] | None = None) -> int:
        """Jobs ``sent`` with a ``sent`` delivery-log row (of ``job_ids``, else of the table)."""
        where, params = ("j.id = ANY(%s::uuid[]) AND", (job_ids,)) if job_ids else ("", ())
        with self.cursor() as cur:
            cur.execute(
                f"""
                SELECT count(*) FROM notification_jobs j
                WHERE {where} j.status = 'sent' AND EXISTS (
                    SELECT 1 FROM notification_delivery_logs l
                    WHERE l.job_id = j.id AND l.status = 'sent')
                """,
                params,
            )
            return cur.fetchone()[0]

    def pg_stats(self) -> dict:
        """``pg_stat_database`` of the bench database and ``pg_stat_user_tables`` of the two job
        tables, after flushing this connection's own pending counts (PostgreSQL 15+)."""
        with self.cursor() as cur:
            with contextlib.suppress(Exception):
                cur.execute("SELECT pg_stat_force_next_flush()")
            cur.execute(
                """
                SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,
                       tup_updated, tup_deleted, blks_hit, blks_read
                FROM pg_stat_database WHERE datname = %s
                """,
                (self.database,),
            )
            names = [d[0] for d in cur.description]
            database = dict(zip(names, map(int, cur.fetchone()), strict=True))
            cur.execute(
                """
                SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0),
                       coalesce(idx_tup_fetch, 0), n_tup_ins, n_tup_upd, n_tup_hot_upd
                FROM pg_stat_user_tables
                WHERE relname IN ('notification_jobs', 'notification_delivery_logs')
                """
            )
            tables = {
                row[0]: dict(
                    zip(
                        (
                            "seq_scan",
                            "seq_tup_read",
                            "idx_scan",
                            "idx_tup_fetch",
                            "n_tup_ins",
                            "n_tup_upd",
                            "n_tup_hot_upd",
                        ),
                        map(int, row[1:]),
                        strict=True,
                    )
                )
                for row in cur.fetchall()
            }
        return {"database": database, "tables": tables}

    def set_log_statement(self, value: str | None) -> None:
        """``log_statement`` for new sessions of the bench database only (None: the default)."""
        admin = self.admin()
        try:
            with admin.cursor() as cur:
                if value is None:
                    cur.execute(f'ALTER DATABASE "{self.database}" RESET log_statement')
                else:
                    cur.execute(
                        f'ALTER DATABASE "{self.database}" SET log_statement = %s', (value,)
                    )
        finally:
            admin.close()


def stats_delta(before: dict, after: dict) -> dict:
    return {
        "database": {k: after["database"][k] - before["database"][k] for k in after["database"]},
        "tables": {
            table: {k: v - before["tables"].get(table, {}).get(k, 0) for k, v in values.items()}
            for table, values in after["tables"].items()
        },
    }


class FakeProvider(Process):
    """``bench/fake_sendgrid.py`` in its own process, and a client for its control API."""

    def __init__(self, api_key: str, logdir: Path):
        self.port = free_port()
        cmd = [
            sys.executable,
            str(BENCH_DIR / "fake_sendgrid.py"),
            "--port",
            str(self.port),
            "--parent-pid",
            str(os.getpid()),
        ]
        env = {**os.environ, "FAKE_SENDGRID_API_KEY": api_key, "PYTHONUNBUFFERED": "1"}
        super().__init__("fake_sendgrid", cmd, env, logdir / "fake_sendgrid.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"the fake SendGrid exited\n{self.log_tail()}")
            if "LISTENING" in self.log_text():
                return
            time.sleep(0.05)
        raise BenchError(f"the fake SendGrid did not start\n{self.log_tail()}")

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=json.dumps(body or {}) if method == "POST" else None)
            resp = conn.getresponse()
            return json.loads(resp.read())
        finally:
            conn.close()

    def stats(self) -> dict:
        return self._call("GET", "/__bench/stats")

    def configure(self, delay_ms: float) -> None:
        self._call("POST", "/__bench/config", {"delay_ms": delay_ms})
        self._call("POST", "/__bench/reset")


class Workers(Process):
    """``dramatiq <module> --processes P --threads T --queues ...`` in its own session."""

    def __init__(self, name, module, queues, env, args, logdir, path: Path | None = None):
        cmd = [venv_bin("dramatiq"), module]
        if path is not None:
            cmd += ["--path", str(path)]
        cmd += ["--processes", str(args.processes), "--threads", str(args.threads)]
        cmd += ["--queues", *queues]
        self.processes = args.processes
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        super().__init__(name, cmd, env, logdir / f"{name}.log")

    def ready_count(self) -> int:
        return self.log_text().count("Worker process is ready for action.")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"{self.name}: dramatiq exited\n{self.log_tail()}")
            if self.ready_count() >= self.processes:
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name}: workers not ready\n{self.log_tail()}")


class PySpy:
    """``py-spy record`` on the worker master and its children, GIL holders only, collapsed
    stacks; :meth:`finish` stops it (SIGINT: it writes its file) and summarises."""

    def __init__(self, binary: str, workers: Process, workdir: Path):
        self.output = workdir / "workers.pyspy.txt"
        cmd = [binary, "record", "--pid", str(workers.proc.pid), "--subprocesses", "--gil"]
        cmd += ["--nonblocking", "--nolineno", "--rate", "250", "--format", "raw"]
        cmd += ["--output", str(self.output)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def finish(self) -> dict | None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None
        with contextlib.suppress(OSError):
            return summarize_profile(self.output.read_text(errors="replace"))
        return None


def summarize_profile(raw: str, top: int = 80) -> dict:
    """Inclusive and self share of samples per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if frames:
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + n

    def share(counts: dict[str, int]) -> list[list]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[frame, round(100 * n / max(1, total), 1)] for frame, n in best]

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(leaf)}


class Api:
    """A keep-alive client of the API's send-bulk-email endpoint."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send_bulk(self, emails: list[dict]) -> list[dict]:
        body = json.dumps({"emails": emails})
        try:
            self.conn.request("POST", BULK_PATH, body=body, headers=self.headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        if resp.status != 202:
            raise BenchError(f"send-bulk-email answered {resp.status}: {raw[:500]!r}")
        jobs = json.loads(raw)["jobs"]
        if len(jobs) != len(emails):
            raise BenchError(f"send-bulk-email returned {len(jobs)} jobs for {len(emails)}")
        return jobs

    def close(self) -> None:
        self.conn.close()


def individual_emails(count: int, tag: str) -> list[dict]:
    """Emails whose content differs one from another, so none are batched together."""
    return [
        {
            "to": f"reader-{tag}-{i}@example.com",
            "type": "system",
            "subject": f"Bench {tag} {i}",
            "templateData": {
                "title": f"News for reader {i}",
                "message": f"Ada took her first steps ({tag} #{i}).",
            },
        }
        for i in range(count)
    ]


def identical_emails(count: int, tag: str) -> list[dict]:
    """Emails with the very same content to different addresses: batched by the API."""
    return [
        {
            "to": f"family-{tag}-{i}@example.com",
            "type": "system",
            "subject": "Ada's first steps",
            "templateData": {"title": "News from Tribe", "message": "Ada took her first steps."},
        }
        for i in range(count)
    ]


def accept(api: Api, emails: list[dict]) -> tuple[list[str], float, set[str]]:
    """Send ``emails`` in requests of at most 1000; (job ids, seconds, statuses)."""
    started = time.perf_counter()
    ids, statuses = [], set()
    for start in range(0, len(emails), BULK_MAX):
        for job in api.send_bulk(emails[start : start + BULK_MAX]):
            ids.append(job["jobId"])
            statuses.add(job["status"])
    return ids, time.perf_counter() - started, statuses


def wait_until(condition, timeout: float, what: str, interval: float = 0.01, on_fail=None):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_fail() if on_fail else ""
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(interval)


# --- the run ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args, store: Store, workdir: Path):
        self.args = args
        self.store = store
        self.workdir = workdir
        self.children: list[Process] = []
        self.log_statement_set = False
        self.jwt_secret = "bench-" + secrets.token_hex(24)
        self.api_key = "SG.bench-" + secrets.token_hex(12)
        self.fake: FakeProvider | None = None
        self.env: dict = {}
        self.token = ""
        self.profile_raw: Path | None = None

    # processes

    def start(self, process: Process) -> Process:
        self.children.append(process)
        return process

    def stop(self, process: Process | None) -> None:
        if process is not None:
            process.stop()

    def stop_all(self) -> None:
        for process in reversed(self.children):
            with contextlib.suppress(Exception):
                process.stop()

    def api(self, name: str) -> Gunicorn:
        server = self.start(Gunicorn(name, "bench_apps:ours()", self.env, self.workdir))
        server.wait_ready()
        return server

    def workers(self, name: str) -> Workers:
        return self.start(
            Workers(
                name, "tribe_worker.main:broker", WORKER_QUEUES, self.env, self.args, self.workdir
            )
        )

    def wait_delivered(self, count: int, workers: Workers, what: str) -> None:
        """Until no message is left on the queue (cheap: Redis), then until all ``count`` jobs
        of the (freshly emptied) table are ``sent`` and logged."""
        store, timeout = self.store, self.args.timeout
        wait_until(
            lambda: store.pending_messages(EMAILS_QUEUE) == 0,
            timeout,
            what,
            0.005,
            workers.log_tail,
        )
        wait_until(lambda: store.sent_and_logged() >= count, timeout, what, 0.1, workers.log_tail)

    def cpu_groups(self, workers: Process | None = None, api: Process | None = None) -> dict:
        return {
            "workers": workers.pids() if workers else [],
            "api": api.pids() if api else [],
            "postgres": self.store.backend_pids(),
            "redis": self.store.redis_pids(),
            "fake_sendgrid": self.fake.pids() if self.fake else [],
            "bench": [os.getpid()],
        }

    def setup(self) -> None:
        from tribe_api.auth import mint_token

        self.token = mint_token(self.jwt_secret, user_id=uuid.uuid4(), ttl=timedelta(hours=2))
        self.store.create()
        self.fake = self.start(FakeProvider(self.api_key, self.workdir))
        self.fake.wait_ready()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "WEB_"))},
            "APP_ENV": "production",
            "DATABASE_URL": self.store.url,
            "REDIS_URL": self.args.redis_url,
            "REDIS_NAMESPACE": self.store.namespace,
            "TRIBE_BENCH_NAMESPACE": self.store.namespace,
            "JWT_SECRET": self.jwt_secret,
            "SENDGRID_API_KEY": self.api_key,
            "SENDGRID_API_HOST": self.fake.url,
            "EMAIL_RATE_LIMIT_PER_SECOND": "1000000",
            "USER_WRITE_RATE_PER_MINUTE": "100000000",
            "WEB_CONCURRENCY": str(self.args.api_workers),
            "GUNICORN_THREADS": str(self.args.api_threads),
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("dramatiq_prom_db", "PROMETHEUS_MULTIPROC_DIR", "dramatiq_queue_prefetch"):
            self.env.pop(name, None)

    # 1. the bare Dramatiq baseline

    def noop(self) -> dict:
        args, store = self.args, self.store
        store.purge_redis()
        broker = RedisBroker(url=args.redis_url, namespace=store.namespace)
        queue = NOOP_QUEUE
        started = time.perf_counter()
        for _ in range(args.noop_messages):
            broker.enqueue(
                dramatiq.Message(
                    queue_name=queue, actor_name=NOOP_ACTOR, args=(), kwargs={}, options={}
                )
            )
        enqueue_s = time.perf_counter() - started
        broker.close()
        if store.waiting(queue) != args.noop_messages:
            raise BenchError(f"expected {args.noop_messages} messages, got {store.waiting(queue)}")
        env = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL",)}
        workers = self.start(
            Workers(
                "noop_workers", "noop_worker:broker", (queue,), env, args, self.workdir, BENCH_DIR
            )
        )
        drain = self._drain(workers, queue, args.noop_messages)
        self.stop(workers)
        dead = store.dead_messages(queue)
        store.purge_redis()
        if dead:
            raise BenchError(f"the no-op actor dead-lettered {dead} messages\n{workers.log_tail()}")
        return {
            "messages": args.noop_messages,
            "enqueue_s": round(enqueue_s, 3),
            **drain,
        }

    def _drain(self, workers: Workers, queue: str, total: int, api=None, on_first=None) -> dict:
        """Poll until no message of ``queue`` is left: timings and CPU from the first ack."""
        store = self.store
        first = first_left = first_sample = None
        while True:
            left = store.pending_messages(queue)
            now = time.monotonic()
            if first is None and left < total:
                first, first_left = now, left
                first_sample = cpu_sample(self.cpu_groups(workers, api))
                if on_first is not None:
                    on_first()
            if left == 0:
                break
            if not workers.alive():
                raise BenchError(f"{workers.name} exited\n{workers.log_tail()}")
            if time.time() - workers.started_at > self.args.timeout:
                raise BenchError(
                    f"{workers.name}: {left} of {total} messages left after "
                    f"{self.args.timeout:.0f} s\n{workers.log_tail()}"
                )
            time.sleep(0.005)
        done_wall = time.time()
        last_sample = cpu_sample(self.cpu_groups(workers, api))
        done_in_window = first_left  # acknowledged after the first sample
        window = max(1e-6, last_sample.at - first_sample.at)
        cpu = cpu_between(first_sample, last_sample)
        return {
            "from_start_s": round(done_wall - workers.started_at, 3),
            "first_ack_after_start_s": round(first - workers.started_mono, 3),
            "window_s": round(window, 3),
            "window_messages": done_in_window,
            "rate_per_s": round(done_in_window / window, 1),
            "cpu": _cpu_per_unit(cpu, done_in_window),
            "done_at": done_wall,
        }

    # 2. individual emails, workers started after acceptance

    def individual(self) -> dict:
        args, store = self.args, self.store
        store.reset()
        self.fake.configure(0)
        ids, accept_s = self._accept_with_workers_stopped(individual_emails(args.emails, "ind"))
        before = store.pg_stats()
        workers = self.workers("workers_individual")
        profiler = None

        def profile():
            nonlocal profiler
            if args.py_spy:
                profiler = PySpy(args.py_spy, workers, self.workdir)

        drain = self._drain(workers, EMAILS_QUEUE, len(ids), on_first=profile)
        profile_summary = profiler.finish() if profiler else None
        if profiler is not None and profiler.output.exists():
            self.profile_raw = profiler.output
        self.stop(workers)
        store.wait_no_backends()
        after = store.pg_stats()
        outcome = self._check(ids, "individual")
        fake = self.fake.stats()
        delta = stats_delta(before, after)
        n = len(ids)
        window = outcome["last_processed_at"] - outcome["first_claimed_at"]
        return {
            "emails": n,
            "accept_s": round(accept_s, 3),
            "accept_per_s": round(n / accept_s, 1),
            "rate_per_s": round(n / window, 1),
            "window_s": round(window, 3),
            "from_start_s": round(outcome["last_processed_at"] - workers.started_at, 3),
            "first_claim_after_start_s": round(outcome["first_claimed_at"] - workers.started_at, 3),
            "polled": {k: drain[k] for k in ("window_s", "window_messages", "rate_per_s")},
            "cpu": drain["cpu"],
            "outcome": outcome,
            "fake": fake,
            "pg_delta": delta,
            "pg_per_email": {k: round(v / n, 2) for k, v in delta["database"].items()},
            "pg_tables_per_email": {
                table: {k: round(v / n, 2) for k, v in values.items()}
                for table, values in delta["tables"].items()
            },
            "profile": profile_summary,
        }

    def _accept_with_workers_stopped(self, emails: list[dict]) -> tuple[list[str], float]:
        """Accept through a fresh API, then stop it (its connections close: stats flushed)."""
        store = self.store
        server = self.api("api_accept")
        api = Api(server.port, self.token)
        try:
            ids, accept_s, statuses = accept(api, emails)
        finally:
            api.close()
            self.stop(server)
        if statuses != {"queued"}:
            raise BenchError(f"accepted jobs should all be queued, got {statuses}")
        if not store.wait_no_backends():
            raise BenchError("the API's database connections did not close")
        waiting = store.waiting(EMAILS_QUEUE)
        by_status = store.jobs_by_status()
        if by_status != {"queued": len(ids)} or waiting != len(ids):
            raise BenchError(f"expected {len(ids)} queued jobs/messages: {by_status}, {waiting}")
        return ids, accept_s

    def _check(self, ids: list[str], phase: str) -> dict:
        outcome = self.store.outcome(ids)
        if outcome["sent_and_logged"] != len(ids):
            raise BenchError(f"{phase}: not every job was sent and logged: {outcome}")
        return outcome

    # 3. statement census

    def census(self) -> dict:
        args, store = self.args, self.store
        log_path = find_pg_log(args.pg_log, store)
        if log_path is None:
            return {"skipped": "the PostgreSQL server log is not readable here (--pg-log)"}
        store.reset()
        self.fake.configure(0)
        ids, _ = self._accept_with_workers_stopped(individual_emails(args.census_emails, "cen"))
        offset = log_path.stat().st_size
        store.set_log_statement("all")
        self.log_statement_set = True
        try:
            workers = self.workers("workers_census")
            self._drain(workers, EMAILS_QUEUE, len(ids))
            self.stop(workers)
            store.wait_no_backends()
        finally:
            store.set_log_statement(None)
            self.log_statement_set = False
        self._check(ids, "census")
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        counts, backends = count_statements(text, store.database)
        n = len(ids)
        return {
            "emails": n,
            "log": str(log_path),
            "backends": backends,
            "statements": sum(counts.values()),
            "statements_per_email": round(sum(counts.values()) / n, 2),
            "by_kind": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "by_kind_per_email": {
                k: round(v / n, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
            },
        }

    # 4 and 5: workers running

    def running(self) -> tuple[dict, dict]:
        args, store = self.args, self.store
        store.reset()
        self.fake.configure(args.slow_delay_ms)
        server = self.api("api_running")
        workers = self.workers("workers_running")
        workers.wait_ready(args.timeout)
        api = Api(server.port, self.token)
        try:
            # Warm-up: every thread's connection, the templates, the SendGrid client.
            warm = args.processes * args.threads * 2
            ids, _, _ = accept(api, individual_emails(warm, "warm"))
            self.wait_delivered(len(ids), workers, "the warm-up emails")
            slow = self._slow_rounds(api, workers, server)
            self.fake.configure(args.bulk_delay_ms)
            store.truncate()
            bulk = self._bulk(api, workers, server)
        finally:
            api.close()
        self.stop(workers)
        self.stop(server)
        return slow, bulk

    def _slow_rounds(self, api: Api, workers: Workers, server: Gunicorn) -> dict:
        args, store = self.args, self.store
        rounds = []
        for rnd in range(args.slow_rounds):
            store.truncate()
            self.fake.configure(args.slow_delay_ms)
            emails = individual_emails(args.slow_emails, f"slow{rnd}")
            sample = cpu_sample(self.cpu_groups(workers, server))
            t0 = time.time()
            ids, accept_s, _ = accept(api, emails)
            self.wait_delivered(len(ids), workers, "the slow round")
            cpu = cpu_between(sample, cpu_sample(self.cpu_groups(workers, server)))
            outcome = self._check(ids, "slow")
            fake = self.fake.stats()
            rounds.append(
                {
                    "round": rnd + 1,
                    "emails": len(ids),
                    "accept_request_s": round(accept_s, 3),
                    "delivered_s": round(outcome["last_processed_at"] - t0, 3),
                    "request_to_first_claim_s": round(outcome["first_claimed_at"] - t0, 3),
                    "claim_to_done_s": round(
                        outcome["last_processed_at"] - outcome["first_claimed_at"], 3
                    ),
                    "fake_requests": fake["accepted"],
                    "fake_duplicates": fake["duplicates"],
                    "cpu": _cpu_per_unit(cpu, len(ids)),
                    "outcome": outcome,
                }
            )
            print(
                f"  slow round {rnd + 1}: {len(ids)} emails delivered and recorded "
                f"{rounds[-1]['delivered_s']:.3f} s after the request"
            )
            time.sleep(0.3)
        threads = args.processes * args.threads
        return {
            "emails": args.slow_emails,
            "delay_ms": args.slow_delay_ms,
            "rounds": rounds,
            "delivered_s_median": round(statistics.median(r["delivered_s"] for r in rounds), 3),
            "delivered_s_max": max(r["delivered_s"] for r in rounds),
            "lower_bound_s": round(-(-args.slow_emails // threads) * args.slow_delay_ms / 1000, 3),
        }

    def _bulk(self, api: Api, workers: Workers, server: Gunicorn) -> dict:
        args = self.args
        emails = identical_emails(args.bulk_emails, "bulk")
        sample = cpu_sample(self.cpu_groups(workers, server))
        t0 = time.time()
        ids, accept_s, _ = accept(api, emails)
        self.wait_delivered(len(ids), workers, "the bulk emails")
        cpu = cpu_between(sample, cpu_sample(self.cpu_groups(workers, server)))
        outcome = self._check(ids, "bulk")
        fake = self.fake.stats()
        return {
            "emails": len(ids),
            "requests_to_api": -(-len(ids) // BULK_MAX),
            "delay_ms": args.bulk_delay_ms,
            "accept_s": round(accept_s, 3),
            "delivered_s": round(outcome["last_processed_at"] - t0, 3),
            "claim_to_done_s": round(outcome["last_processed_at"] - outcome["first_claimed_at"], 3),
            "cpu": _cpu_per_unit(cpu, len(ids)),
            "outcome": outcome,
            "fake": fake,
        }


def modified_code() -> list[str]:
    """Product files changed from the commit (the figures measure the working tree)."""
    out = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "services", "shared"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


def _cpu_per_unit(cpu: dict, units: int) -> dict:
    units = max(1, units)
    return {
        "wall_s": round(cpu["wall_s"], 3),
        "us_per_unit": {k: round(v * 1e6 / units) for k, v in cpu["seconds"].items()},
        "cores": {k: round(v / cpu["wall_s"], 2) for k, v in cpu["seconds"].items()},
        "machine_busy_pct": round(100 * cpu["machine_busy"], 1),
        "other_cores": round(cpu["other_cores"], 2),
    }


# --- the statement census ---------------------------------------------------------------------


def find_pg_log(explicit: str | None, store: Store) -> Path | None:
    candidates = [Path(explicit)] if explicit else []
    if not candidates:
        with store.cursor() as cur:
            cur.execute("SHOW server_version_num")
            major = int(cur.fetchone()[0]) // 10000
            with contextlib.suppress(Exception):
                cur.execute("SELECT pg_current_logfile()")
                current = cur.fetchone()[0]
                if current:
                    cur.execute("SHOW data_directory")
                    candidates.append(Path(cur.fetchone()[0]) / current)
        candidates.append(Path(f"/var/log/postgresql/postgresql-{major}-main.log"))
    for path in candidates:
        with contextlib.suppress(OSError), path.open("rb"):
            return path
    return None


_STATEMENT = re.compile(r"\[(\d+)\] [^@\s]*@(\S+) LOG:  statement: (.*)")
_TABLE = re.compile(r'(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)"?', re.IGNORECASE)


def count_statements(log_text: str, database: str) -> tuple[dict[str, int], int]:
    """Statements logged for ``database``: counts by kind ("UPDATE notification_jobs", "BEGIN",
    ...) and the number of backends (connections) that sent them."""
    counts: dict[str, int] = {}
    pids = set()
    for line in log_text.splitlines():
        match = _STATEMENT.search(line)
        if not match or match.group(2) != database:
            continue
        pids.add(match.group(1))
        sql = match.group(3).strip()
        verb = sql.split(None, 1)[0].upper() if sql else "?"
        table = _TABLE.search(sql)
        if table and verb != "SET":
            kind = f"{verb} {table.group(1)}"
        else:
            kind = sql if len(sql) <= 40 else verb
        if verb == "UPDATE" and "RETURNING" in sql.upper():
            kind += " ... RETURNING"
        counts[kind] = counts.get(kind, 0) + 1
    return counts, len(pids)


# --- report -----------------------------------------------------------------------------------


def verdict(phases: dict) -> list[dict]:
    ind, slow, bulk = phases["individual"], phases["slow"], phases["bulk"]
    return [
        {
            "target": "individual emails delivered and recorded "
            f">= {TARGET_INDIVIDUAL_PER_S:.0f}/s",
            "value": ind["rate_per_s"],
            "unit": "emails/s",
            "met": ind["rate_per_s"] >= TARGET_INDIVIDUAL_PER_S,
        },
        {
            "target": f"{slow['emails']} emails, fake answering after {slow['delay_ms']:.0f} ms, "
            f"delivered and recorded < {TARGET_SLOW_S:.0f} s (median of rounds)",
            "value": slow["delivered_s_median"],
            "unit": "s",
            "met": slow["delivered_s_median"] < TARGET_SLOW_S,
        },
        {
            "target": f"{bulk['emails']:,} bulk emails delivered and recorded "
            f"< {TARGET_BULK_S:.0f} s",
            "value": bulk["delivered_s"],
            "unit": "s",
            "met": bulk["delivered_s"] < TARGET_BULK_S,
        },
    ]


CPU_GROUPS = ("workers", "postgres", "redis", "fake_sendgrid", "api", "bench", "other")


def _cpu_row(label: str, cpu: dict, unit: str) -> str:
    us = cpu["us_per_unit"]
    total = sum(us[k] for k in CPU_GROUPS if k != "other")
    cells = " | ".join(str(us.get(k, 0)) for k in CPU_GROUPS)
    return f"| {label} ({unit}) | {cells} | {total} | {cpu['machine_busy_pct']:.0f}% |"


def render_markdown(report: dict) -> str:
    m, cfg, ph = report["machine"], report["config"], report["phases"]
    noop, ind, slow, bulk, census = (
        ph["noop"],
        ph["individual"],
        ph["slow"],
        ph["bulk"],
        ph["census"],
    )
    ok = {True: "**met**", False: "**missed**"}
    workers = f"{cfg['processes']} processes x {cfg['threads']} threads"
    lines = [
        "# End-to-end email benchmark (latest run)",
        "",
        f"Run {report['started_at']} by `{report['command']}`; raw figures in "
        f"`{report['json_file']}`.",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), load average at start "
        f"{' / '.join(map(str, m['loadavg_at_start']))}, {m['platform']}",
        f"- Python {m['python']}, dramatiq {m['packages']['dramatiq']}, "
        f"peewee {m['packages']['peewee']}, sendgrid {m['packages']['sendgrid']}, "
        f"gunicorn {m['packages']['gunicorn']}; PostgreSQL {m['postgresql']}, Redis {m['redis']}, "
        f"all on 127.0.0.1; git {m['git']}"
        + (f" (modified: {', '.join(m['modified_code'])})" if m.get("modified_code") else ""),
        f"- workers: `{cfg['worker_command']}` ({workers}), "
        "`EMAIL_RATE_LIMIT_PER_SECOND=1000000`; API: gunicorn with "
        f"`services/api/gunicorn.conf.py` ({cfg['api_workers']} x {cfg['api_threads']}); "
        "fake SendGrid: `bench/fake_sendgrid.py` (asyncio, own process), reached by the worker's "
        "real SendGrid provider (kept-alive connection per thread)",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
    ]
    for v in report["verdict"]:
        lines.append(f"| {v['target']} | {v['value']} {v['unit']} | {ok[v['met']]} |")
    ratio = ind["rate_per_s"] / noop["rate_per_s"] if noop["rate_per_s"] else 0
    ind_cpu = sum(
        ind["cpu"]["us_per_unit"].get(k, 0)
        for k in ("workers", "postgres", "redis", "fake_sendgrid")
    )
    lines += [
        "",
        "## Figures",
        "",
        "| phase | what is timed | figure |",
        "|---|---|---:|",
        f"| 1. bare Dramatiq no-op ({noop['messages']:,} messages) | first ack -> queue empty "
        f"| **{noop['rate_per_s']:,.0f} messages/s** |",
        f"| | worker start -> queue empty (includes start-up) | {noop['from_start_s']:.2f} s |",
        f"| 2. individual emails ({ind['emails']:,}, fake at 0 ms) | first claim -> last job "
        f"`sent` + logged (DB timestamps) | **{ind['rate_per_s']:,.0f} emails/s** |",
        f"| | worker start -> last job recorded (includes start-up "
        f"{ind['first_claim_after_start_s']:.2f} s) | {ind['from_start_s']:.2f} s "
        f"({ind['emails'] / ind['from_start_s']:,.0f}/s) |",
        f"| | emails/s over no-op messages/s (same run) | {ratio:.3f} |",
        f"| | CPU per email of workers + PostgreSQL + Redis + fake -> ceiling on "
        f"{m['nproc']} idle CPUs | {ind_cpu / 1000:.2f} ms -> "
        f"{m['nproc'] * 1e6 / max(1, ind_cpu):,.0f}/s |",
        f"| | API acceptance beforehand ({-(-ind['emails'] // BULK_MAX)} send-bulk-email) "
        f"| {ind['accept_per_s']:,.0f} jobs/s |",
        f"| 4. {slow['emails']} individual emails, fake at {slow['delay_ms']:.0f} ms, "
        f"workers warm | request sent -> last job `sent` + logged, median of "
        f"{len(slow['rounds'])} (worst) | **{slow['delivered_s_median']:.3f} s** "
        f"({slow['delivered_s_max']:.3f} s) |",
        f"| | lower bound: ceil({slow['emails']} / {cfg['processes'] * cfg['threads']} threads) "
        f"x {slow['delay_ms']:.0f} ms | {slow['lower_bound_s']:.3f} s |",
        f"| 5. {bulk['emails']:,} identical emails, fake at {bulk['delay_ms']:.0f} ms, workers "
        f"warm | first request sent -> last job `sent` + logged "
        f"| **{bulk['delivered_s']:.2f} s** |",
        f"| | API acceptance ({bulk['requests_to_api']} requests of <= 1,000) "
        f"| {bulk['accept_s']:.2f} s |",
        f"| | SendGrid requests / personalizations (max per request) "
        f"| {bulk['fake']['accepted']} / {bulk['fake']['personalizations']:,} "
        f"({bulk['fake']['max_personalizations']}) |",
        "",
        "Checks: every job `sent` with a `sent` delivery-log row; SendGrid duplicates "
        f"(a job id in two accepted requests): individual {ind['fake']['duplicates']}, "
        f"bulk {bulk['fake']['duplicates']}; retries: individual {ind['outcome']['retries']}, "
        f"bulk {bulk['outcome']['retries']}.",
        "",
        "## Database work per email (phase 2)",
        "",
        f"`pg_stat_database` deltas for `{cfg['database']}` over phase 2 (workers only: the API "
        "was stopped before the first snapshot, the workers before the second), per email:",
        "",
        "| transactions committed | rolled back | rows returned | rows fetched | inserted "
        "| updated | deleted | buffer hits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pe = ind["pg_per_email"]
    lines.append(
        f"| {pe['xact_commit']} | {pe['xact_rollback']} | {pe['tup_returned']} "
        f"| {pe['tup_fetched']} | {pe['tup_inserted']} | {pe['tup_updated']} "
        f"| {pe['tup_deleted']} | {pe['blks_hit']} |"
    )
    lines += [
        "",
        "Rows returned/fetched and buffer hits include the catalog look-ups of each new worker "
        f"connection ({cfg['processes'] * cfg['threads']} of them), so they shrink with larger "
        "batches; the table counters below are the jobs' own.",
    ]
    tables = ind["pg_tables_per_email"]
    if tables:
        lines += [
            "",
            "| table (per email) | index scans | seq scans | rows inserted | rows updated "
            "| HOT updates |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for table, t in sorted(tables.items()):
            lines.append(
                f"| {table} | {t['idx_scan']} | {t['seq_scan']} | {t['n_tup_ins']} "
                f"| {t['n_tup_upd']} | {t['n_tup_hot_upd']} |"
            )
    lines += ["", "Statement census (every statement the workers sent, from the server log "]
    if "skipped" in census:
        lines[-1] += f"): skipped - {census['skipped']}."
    else:
        lines[-1] += (
            f"with `log_statement = 'all'` for the bench database only, a separate batch of "
            f"{census['emails']} individual emails, {census['backends']} connections): "
            f"**{census['statements_per_email']} statements per email**"
        )
        lines += ["", "| statement | per email | total |", "|---|---:|---:|"]
        for kind, count in census["by_kind"].items():
            lines.append(f"| `{kind}` | {census['by_kind_per_email'][kind]} | {count} |")
    lines += [
        "",
        "## CPU time",
        "",
        "Per message/email, in microseconds, by process group, over each timed window "
        "(`other` = the rest of the machine: other sessions, i.e. noise; Redis is the machine's "
        "shared server). With 2 CPUs saturated, a rate is at most 2 s / (sum).",
        "",
        f"| phase | {' | '.join(CPU_GROUPS)} | sum (without other) | machine busy |",
        f"|---|{'---:|' * (len(CPU_GROUPS) + 2)}",
        _cpu_row("1. no-op", noop["cpu"], "per message"),
        _cpu_row("2. individual", ind["cpu"], "per email"),
    ]
    for r in slow["rounds"]:
        lines.append(_cpu_row(f"4. slow round {r['round']}", r["cpu"], "per email"))
    lines += [
        _cpu_row("5. bulk", bulk["cpu"], "per email"),
        "",
        "Slow rounds: "
        + "; ".join(
            f"round {r['round']}: {r['delivered_s']:.3f} s (request answered after "
            f"{r['accept_request_s']:.3f} s, first claim after {r['request_to_first_claim_s']:.3f}"
            f" s, first claim -> done {r['claim_to_done_s']:.3f} s)"
            for r in slow["rounds"]
        )
        + ".",
        "",
    ]
    profile = ind.get("profile")
    if profile:
        lines += [
            "## Profile of the workers in phase 2 (py-spy, threads holding the GIL)",
            "",
            f"{profile['samples']} samples; share of samples in which a function was on the stack "
            "(inclusive) and at its top (self):",
            "",
            "| inclusive % | function | | self % | function |",
            "|---:|---|---|---:|---|",
        ]
        for (inc_f, inc), (self_f, own) in zip(
            profile["inclusive_pct"][:30], profile["self_pct"][:30], strict=False
        ):
            lines.append(f"| {inc} | `{inc_f}` | | {own} | `{self_f}` |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    trap_signals()
    lock = single_run_lock(args.database)
    if lock is None:
        print(f"another run is using {args.database!r}: wait for it", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="tribe-bench-e2e-"))
    store = Store(args.postgres_url, args.database, args.redis_url, args.namespace)
    bench = Bench(args, store, workdir)
    failed = True
    try:
        bench.setup()
        info = {
            **machine_basics(PACKAGES),
            **store.server_versions(),
            "modified_code": modified_code(),
        }
        print(
            f"{info['nproc']} CPUs, Python {info['python']}, load {info['loadavg_at_start']}, "
            f"fake SendGrid on {bench.fake.url}"
        )
        phases = {}
        phases["noop"] = bench.noop()
        print(f"  1. no-op baseline: {phases['noop']['rate_per_s']:,.0f} messages/s")
        phases["individual"] = bench.individual()
        ind = phases["individual"]
        print(
            f"  2. individual: {ind['rate_per_s']:,.0f} emails/s "
            f"({ind['emails']} in {ind['window_s']:.2f} s; from worker start "
            f"{ind['from_start_s']:.2f} s); {ind['pg_per_email']['xact_commit']} commits/email"
        )
        phases["census"] = bench.census() if args.census_emails else {"skipped": "disabled"}
        if "skipped" not in phases["census"]:
            print(f"  3. census: {phases['census']['statements_per_email']} statements/email")
        phases["slow"], phases["bulk"] = bench.running()
        print(
            f"  4. slow: median {phases['slow']['delivered_s_median']:.3f} s; "
            f"5. bulk: {phases['bulk']['delivered_s']:.2f} s"
        )
        info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        args.results.mkdir(parents=True, exist_ok=True)
        json_path = args.results / f"e2e_email-{stamp}.json"
        report = {
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "command": " ".join(["bench/e2e_email.py", *(argv or sys.argv[1:])]),
            "json_file": relative(json_path),
            "machine": info,
            "config": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "dramatiq_env": {k: v for k, v in os.environ.items() if k.startswith("dramatiq_")},
                "worker_command": (
                    f"dramatiq tribe_worker.main:broker --processes {args.processes} "
                    f"--threads {args.threads} --queues {' '.join(WORKER_QUEUES)}"
                ),
            },
            "phases": phases,
            "verdict": verdict(phases),
        }
        if bench.profile_raw is not None and phases["individual"].get("profile"):
            raw_path = args.results / f"e2e_email-{stamp}.pyspy.txt"
            shutil.copyfile(bench.profile_raw, raw_path)
            report["phases"]["individual"]["profile"]["raw_file"] = relative(raw_path)
        json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        md = render_markdown(report)
        (args.results / "e2e_email.md").write_text(md)
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
        ignore_signals()
        bench.stop_all()
        if bench.log_statement_set:
            with contextlib.suppress(Exception):
                store.set_log_statement(None)
        store.close(drop=not args.keep_db)
        if failed:
            print(f"process logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        restore_signals()


if __name__ == "__main__":
    sys.exit(main())
