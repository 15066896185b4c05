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
small multi-process ``http.client`` client (``bench/accept/clients.py``). Everything it
creates is its own: a database (``tribe_bench``, dropped at the end unless ``--keep-db``) and a
Redis namespace (``tribe_bench``, deleted after every round). Only loopback addresses are
accepted.

Writes ``bench/results/api_accept-<UTC timestamp>.json`` and ``bench/results/api_accept.md``.

    .venv/bin/python bench/api_accept.py
    .venv/bin/python bench/api_accept.py --quick    # a smoke run: 1 round of 3 s
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from accept.clients import BODY, MAX_RUN_SECONDS, PATH, choose_client
from accept.report import render_markdown, summarize, verdict
from accept.variants import VARIANTS, Variant
from common import product
from common.cpu import CpuMeter
from common.options import add_store_options, check_store_options
from common.paths import relative
from common.processes import GUNICORN_CONF, Gunicorn
from common.results import STACK_PACKAGES, ResultFiles, load_average, machine_basics, utc_stamp
from common.safety import BenchError, run_guarded, single_run_lock
from common.store import BenchStore

NAME = "api_accept"
QUEUE = "emails"
#: Versions recorded with the figures.
PACKAGES = (*STACK_PACKAGES, "pydantic", "spectree", "pyjwt")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_options(p, "tribe_bench")
    p.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY (default 2)")
    p.add_argument("--threads", type=int, default=4, help="GUNICORN_THREADS (default 4)")
    p.add_argument("--connections", type=int, default=8, help="concurrent connections")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per variant")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per timed round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds per variant and load")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--quick", action="store_true", help="1 s warm-up, 1 round of 3 s")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.duration, args.rounds = 1.0, 3.0, 1
    if not 0 < args.duration <= MAX_RUN_SECONDS or not 0 <= args.warmup <= MAX_RUN_SECONDS:
        p.error(f"--duration and --warmup must be at most {MAX_RUN_SECONDS} seconds")
    if not 1 <= args.connections <= 256 or not 1 <= args.rounds <= 20:
        p.error("--connections must be 1..256 and --rounds 1..20")
    check_store_options(p, args)
    return args


class Store(BenchStore):
    """The bench database and Redis namespace, and what a round left in them."""

    def counts(self) -> dict:
        with self.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM notification_jobs GROUP BY status")
            by_status = dict(cur.fetchall())
        return {
            "db_jobs": sum(by_status.values()),
            "db_jobs_by_status": by_status,
            "redis_waiting": self.waiting(QUEUE),
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


class Server(Gunicorn):
    """One gunicorn master (in its own session) serving a variant on 127.0.0.1."""

    def __init__(self, variant: Variant, env: dict, logdir: Path):
        self.variant = variant
        super().__init__(variant.name, variant.app, env, logdir)


def cpu_groups(server: Server, store: Store):
    """The process groups whose CPU time a load run is charged with."""
    return lambda: {
        "app": server.pids(),
        "postgres": store.backend_pids(),
        "redis": store.redis_pids(),
    }


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


def machine_info(client, store: Store, args) -> dict:
    return {
        **machine_basics(PACKAGES),
        "client": f"{client.name} ({client.version()})",
        "gunicorn": {
            "config": relative(GUNICORN_CONF),
            "worker_class": "gthread",
            "workers": args.workers,
            "threads": args.threads,
        },
        **store.server_versions(),
    }


def server_env(args, store: Store, jwt_secret: str) -> dict:
    """The environment of every variant's gunicorn: production settings, the bench's own
    database and namespace, no SendGrid (nothing consumes the queue)."""
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
        # One bench user sends everything: the limit stays on (its cost is measured), high.
        "USER_WRITE_RATE_PER_MINUTE": "100000000",
        "PYTHONUNBUFFERED": "1",
        **product.DELIVERY_VARIABLES,
    }
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


def run_load(client, store: Store, server: Server, connections: int, seconds: float) -> dict:
    before = store.counts()
    with CpuMeter(cpu_groups(server, store)) as cpu:
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


def start_servers(servers: list[Server], env: dict, store: Store, headers: dict, workdir: Path):
    """Every variant listening and checked by hand, then warmed up."""
    for variant in VARIANTS:
        servers.append(Server(variant, env, workdir))
    for server in servers:
        server.wait_ready()
        sanity_check(server, store, headers)
        print(f"  {server.variant.name}: ready on 127.0.0.1:{server.port}, sanity check ok")


def warm_up(client, store: Store, servers: list[Server], args) -> None:
    for server in servers:
        if args.warmup:
            client.run(server.port, args.connections, args.warmup)
            store.settled_counts()
            store.reset()
    print(f"  warm-up done ({args.warmup} s each)")


def timed_rounds(client, store: Store, servers: list[Server], args) -> list[dict]:
    """``--rounds`` at ``--connections``, then as many at 1 connection, the order of the
    variants rotated every round so that none always runs first or last."""
    runs = []
    for conns in (args.connections, 1):
        for rnd in range(args.rounds):
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
    return runs


def build_report(args, argv, started: datetime, files: ResultFiles, info, runs) -> dict:
    table = summarize(runs)
    return {
        **files.run_fields(started, "bench/api_accept.py", argv),
        "machine": {**info, "loadavg_at_end": load_average()},
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lock = single_run_lock(args.database)  # noqa: F841 - held until the process exits
    started = datetime.now(UTC)
    files = ResultFiles(args.results, NAME, utc_stamp(started))
    jwt_secret = "bench-" + secrets.token_hex(24)
    token = product.mint_token(
        jwt_secret, user_id=uuid.uuid4(), role="service_role", ttl=timedelta(hours=2)
    )
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    workdir = Path(tempfile.mkdtemp(prefix="tribe-bench-"))
    try:
        client = choose_client(args.client, headers, workdir)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2
    store = Store(args.postgres_url, args.database, args.redis_url, args.namespace)
    servers: list[Server] = []

    def run() -> None:
        store.create()
        env = server_env(args, store, jwt_secret)
        info = machine_info(client, store, args)
        print(
            f"{info['nproc']} CPUs, Python {info['python']}, load {info['loadavg_at_start']}, "
            f"client {info['client']}"
        )
        start_servers(servers, env, store, headers, workdir)
        warm_up(client, store, servers, args)
        runs = timed_rounds(client, store, servers, args)
        report = build_report(args, argv, started, files, info, runs)
        files.publish(report, render_markdown(report))

    def cleanup() -> None:
        for server in servers:
            server.stop()
        store.close(drop=not args.keep_db)

    return run_guarded(run, cleanup, workdir)


if __name__ == "__main__":
    sys.exit(main())
