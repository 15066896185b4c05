"""How fast does retention purge a million expired jobs, and what does the API's accept path
feel meanwhile?

Fills a database of its own (``tribe_bench_retention``) with ``--rows`` finished jobs that ended
over 90 days ago (one delivery log each), ``--scrub-rows`` that ended 45 days ago (to scrub) and
as many recent ones, then:

1. **idle**: ``POST /api/notifications/send-email`` at ``--rate`` requests/s for ``--seconds``,
   in-process (``falcon.testing``: our validation, auth and INSERT; no broker, so the jobs stay
   ``pending``), the latency of each;
2. **purge**: the same load while another process runs the retention task
   (``tribe_worker.retention.apply_retention``, as the scheduler's tick does, without its 40 s
   limit) until nothing is left: rows/s deleted and scrubbed, and the accept path's latency.

Target: the accept path's p99 during the purge within 2x of idle.

    .venv/bin/python bench/retention.py [--rows 1000000] [--rate 50] [--seconds 20] [--pause 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime

from common.options import add_store_options
from common.product import Settings, create_app, mint_token, utcnow
from common.results import (
    STACK_PACKAGES,
    ResultFiles,
    machine_basics,
    markdown_header,
    utc_stamp,
)
from common.store import BenchStore
from falcon import testing

NAME = "tribe_bench_retention"
SECRET = "bench-secret-" + "x" * 32
TARGET_RATIO = 2.0

FILL = """
INSERT INTO notification_jobs (
    id, kind, status, to_email, notification_type, urgency, delivery_method, content,
    scheduled_for, created_at, queued_at, processed_at, attempts, retry_count, lease_losses)
SELECT gen_random_uuid(), 'email',
       (ARRAY['sent','sent','sent','sent','sent','sent','failed','skipped','cancelled','sent'])
           [1 + j % 10],
       'r' || j || '@example.com', 'immediate', 'normal', 'email',
       '{{"type": "system", "subject": null, "templateData": {{"title": "Hello"}}}}'::jsonb,
       ts, ts, ts, ts + interval '2 seconds', 1, 0, 0
FROM (SELECT j, now() - interval '{days} days' - (j || ' seconds')::interval AS ts
      FROM generate_series(1, {rows}) j) s;
"""
LOGS = """
INSERT INTO notification_delivery_logs (id, job_id, attempt, provider, status, duration_ms,
                                        created_at)
SELECT gen_random_uuid(), id, 1, 'sendgrid', 'sent', 40, processed_at FROM notification_jobs;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill(store: BenchStore, rows: int, scrub_rows: int) -> dict:
    started = time.perf_counter()
    with store.cursor() as cur:
        cur.execute(FILL.format(days=100, rows=rows))  # expired: to delete
        cur.execute(FILL.format(days=45, rows=scrub_rows))  # past the content retention
        cur.execute(FILL.format(days=1, rows=scrub_rows))  # recent: untouched
        cur.execute(LOGS)
        cur.execute("VACUUM ANALYZE notification_jobs")
        cur.execute("VACUUM ANALYZE notification_delivery_logs")
        cur.execute("SELECT count(*) FROM notification_jobs")
        (jobs,) = cur.fetchone()
    seconds = time.perf_counter() - started
    print(f"filled {jobs:,} jobs and as many delivery logs in {seconds:.1f} s", flush=True)
    return {"jobs": jobs, "seconds": round(seconds, 1)}


def purge(url: str, pause: float, results) -> None:
    """In a process of its own: retention until nothing is left, as the tick runs it."""
    from common.product import apply_retention, db

    db.bind(url)
    deleted = scrubbed = 0
    started = time.perf_counter()
    with db.connection():
        while True:
            run = apply_retention(
                job_days=90, content_days=30, clock=utcnow, run_seconds=3600, pause=pause
            )
            deleted, scrubbed = deleted + run.deleted, scrubbed + run.scrubbed
            if not run.deleted and not run.scrubbed:
                break
    results.put(
        {"deleted": deleted, "scrubbed": scrubbed, "seconds": time.perf_counter() - started}
    )


def load(api, rate: float, until) -> list[float]:
    """send-email requests at ``rate`` per second until ``until()``; their latencies in ms."""
    headers = {"Authorization": f"Bearer {mint_token(SECRET)}"}
    body = {"to": "nana@example.com", "type": "system", "templateData": {"title": "Hi"}}
    timings, started, i = [], time.perf_counter(), 0
    while not until():
        due = started + i / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        t0 = time.perf_counter()
        response = api.simulate_post("/api/notifications/send-email", json=body, headers=headers)
        timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 202, response.text
        i += 1
    return timings


def summary(timings: list[float]) -> dict:
    return {
        "requests": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "max_ms": round(max(timings), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_options(parser, NAME)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scrub-rows", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=50.0, help="accept requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the idle phase")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    args = parser.parse_args()
    started_at = datetime.now(UTC)
    machine = machine_basics(STACK_PACKAGES)
    store = BenchStore(args.postgres_url, args.database, None, args.namespace)
    store.create(fresh=True)
    try:
        filled = fill(store, args.rows, args.scrub_rows)
        store.bind()
        settings = Settings(app_env="test", database_url=store.url, jwt_secret=SECRET)
        api = testing.TestClient(create_app(settings))
        load(api, args.rate, _for(2.0))  # warm-up
        idle_end = time.perf_counter() + args.seconds
        idle = load(api, args.rate, lambda: time.perf_counter() >= idle_end)
        print(f"idle: {summary(idle)}", flush=True)
        results = multiprocessing.Queue()
        purger = multiprocessing.Process(target=purge, args=(store.url, args.pause, results))
        purger.start()
        during = load(api, args.rate, lambda: not purger.is_alive())
        purger.join()
        purged = results.get(timeout=10)
        print(f"purge: {purged}; accept path meanwhile: {summary(during)}", flush=True)
    finally:
        store.close(drop=not args.keep_db)
    write(args, started_at, machine, filled, summary(idle), summary(during), purged)


def _for(seconds: float):
    end = time.perf_counter() + seconds
    return lambda: time.perf_counter() >= end


def write(args, started_at, machine, filled, idle, during, purged) -> None:
    files = ResultFiles(args.results, "retention", utc_stamp(started_at))
    rows_per_second = purged["deleted"] / purged["seconds"] if purged["seconds"] else 0.0
    ratio = during["p99_ms"] / idle["p99_ms"]
    met = ratio <= TARGET_RATIO
    report = {
        **files.run_fields(started_at, "bench/retention.py", sys.argv[1:]),
        "machine": machine,
        "options": {k: v for k, v in vars(args).items() if k != "results"},
        "filled": filled,
        "purge": {**purged, "deleted_per_second": round(rows_per_second)},
        "accept_idle": idle,
        "accept_during_purge": during,
        "p99_ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "met": met,
    }
    lines = [
        *markdown_header("Retention benchmark", report),
        "",
        f"{args.rows:,} expired jobs (ended 100 days ago, one delivery log each), "
        f"{args.scrub_rows:,} to scrub (45 days) and {args.scrub_rows:,} recent; "
        f"`send-email` at {args.rate:g}/s in-process (falcon.testing, no broker) while another "
        f"process ran retention in batches of 1,000 (pause between batches {args.pause:g} s).",
        "",
        "| phase | requests | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        f"| idle | {idle['requests']} | {idle['p50_ms']} | {idle['p99_ms']} | {idle['max_ms']} |",
        f"| during the purge | {during['requests']} | {during['p50_ms']} | {during['p99_ms']} "
        f"| {during['max_ms']} |",
        "",
        f"Purge: {purged['deleted']:,} jobs (and their delivery logs) deleted and "
        f"{purged['scrubbed']:,} scrubbed in {purged['seconds']:.1f} s: "
        f"**{rows_per_second:,.0f} jobs/s** deleted.",
        "",
        f"p99 during the purge / idle: **{ratio:.2f}x** (target ≤ {TARGET_RATIO:g}x: "
        f"**{'met' if met else 'missed'}**).",
    ]
    files.publish(report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
