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
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
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

from common import (
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    GUNICORN_CONF,
    RESULTS_DIR,
    BenchError,
    BenchStore,
    CpuMeter,
    Gunicorn,
    ignore_signals,
    is_loopback,
    machine_basics,
    relative,
    restore_signals,
    single_run_lock,
    trap_signals,
)

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


# --- arguments and safety -------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    p.add_argument("--database", default="tribe_bench", help="the bench's own database")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
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
        if not is_loopback(host):
            p.error(f"--{name.replace('_', '-')} must point at a loopback address, not {host!r}")
    if not args.database.replace("_", "").isalnum() or not args.namespace:
        p.error("--database must be a plain identifier")
    return args


# --- PostgreSQL and Redis -------------------------------------------------------------------


class Store(BenchStore):
    """The bench database and Redis namespace, and what a round left in them."""

    def counts(self) -> dict:
        with self.cursor() as cur:
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


def cpu_groups(server: Server, store: Store):
    """The process groups whose CPU time a load run is charged with."""
    return lambda: {
        "app": server.pids(),
        "postgres": store.backend_pids(),
        "redis": store.redis_pids(),
    }


# --- gunicorn -------------------------------------------------------------------------------


class Server(Gunicorn):
    """One gunicorn master (in its own session) serving a variant on 127.0.0.1."""

    def __init__(self, variant: Variant, env: dict, logdir: Path):
        self.variant = variant
        super().__init__(variant.name, variant.app, env, logdir)


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


PACKAGES = (
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
    trap_signals()
    lock = single_run_lock(args.database)
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
            # One bench user sends everything: the limit stays on (its cost is measured), high.
            "USER_WRITE_RATE_PER_MINUTE": "100000000",
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
            "json_file": relative(json_path),
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
        ignore_signals()
        for server in servers:
            server.stop()
        store.close(drop=not args.keep_db)
        if failed:
            print(f"gunicorn logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        restore_signals()


if __name__ == "__main__":
    sys.exit(main())
