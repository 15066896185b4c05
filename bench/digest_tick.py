"""How fast does the scheduler turn due digest schedules into digest jobs?

Fills a PostgreSQL database of its own (``tribe_bench_digests``) with 100,000 due schedules
(daily, weekly and monthly, in a dozen timezones), then times in the same run:

* ``ours``: the scheduler's tick message (``schedule_due_digests``) on the worker's Redis broker,
  run by an in-process Dramatiq worker on the maintenance queue (``--threads``, as one worker
  process): the tick takes batches of 1,000 and, finding a backlog, sends helper ticks that take
  other batches at the same time (jobs written, handed over, schedules moved on);
* ``naive``: the obvious loop, one schedule at a time in its own transaction: read it, create
  its job, save its next run, send its message. It runs over a sample (``--naive``) and its
  rate is extrapolated, since at its pace the whole set would take minutes.

Target: 100,000 due schedules turned into jobs in under 10 s. Checks: one job per schedule,
every schedule's next run after the tick, every job's message in Redis.

    .venv/bin/python bench/digest_tick.py [--schedules 100000] [--naive 5000] [--keep-db]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime

import dramatiq
from common.cpu import CpuMeter
from common.paths import RESULTS_DIR, relative
from common.product import (
    Actor,
    DigestSchedule,
    JobKind,
    JobStatus,
    NotificationJob,
    NotificationType,
    Queue,
    Settings,
    build_worker,
    db,
    next_run_after,
    parse_delivery_time,
    route,
)
from common.results import ResultFiles, machine_basics, utc_stamp
from common.safety import single_run_lock
from common.store import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, BenchStore, families_sql

NAME = "tribe_bench_digests"
ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Chatham",
]
USERS = 100
TARGET_SECONDS = 10.0


def fill_sql(count: int) -> str:
    """``count`` recipients in ``USERS`` families, each recipient with a digest schedule."""
    zones = "ARRAY[" + ", ".join(f"'{z}'" for z in ZONES) + "]"
    return (
        "TRUNCATE users CASCADE;"
        + families_sql(USERS, count)
        + f"""
INSERT INTO digest_schedules (
    id, owner_id, recipient_id, group_id, frequency, delivery_time, delivery_day, timezone,
    is_active, max_updates_per_digest, include_content_types, created_at, updated_at)
SELECT md5('schedule' || r)::uuid, md5('user' || (r % {USERS} + 1))::uuid,
       md5('recipient' || r)::uuid, md5('group' || (r % {USERS} + 1))::uuid,
       (ARRAY['daily', 'daily', 'weekly', 'monthly'])[1 + r % 4],
       lpad((r % 24)::text, 2, '0') || ':' || lpad((r % 60)::text, 2, '0') || ':00',
       CASE r % 4 WHEN 2 THEN 1 + r % 7 WHEN 3 THEN 1 + r % 31 END,
       ({zones})[1 + r % {len(ZONES)}],
       true, 10, '["photo", "milestone", "text", "video"]'::jsonb,
       now() - interval '30 days', now() - interval '30 days'
FROM generate_series(1, {count}) r;
"""
    )


#: Every schedule due, at a spread of past instants (a tick after a short outage).
MAKE_DUE = """
UPDATE digest_schedules
SET next_digest_scheduled = (now() at time zone 'utc')
    - (('x' || substr(md5(id::text), 1, 4))::bit(16)::int % 300 + 1) * interval '1 second',
    last_digest_sent = NULL;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=5_000, help="schedules the naive loop runs")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--threads", type=int, default=8, help="worker threads of the tick")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--summaries",
        action="store_true",
        help="every group opted in to AI summaries and a model configured (issue #18): the "
        "tick must not slow down, since the build actor, never the tick, asks the model",
    )
    args = parser.parse_args()
    lock = single_run_lock(NAME)  # noqa: F841 - held until the process exits

    store = BenchStore(args.postgres_url, NAME, args.redis_url, NAME)
    store.create()
    try:
        results = run(store, args)
    finally:
        store.close(drop=not args.keep_db)
    write(results)


def run(store: BenchStore, args) -> dict:
    with store.cursor() as cur:
        cur.execute(fill_sql(args.schedules))
        if args.summaries:
            cur.execute("UPDATE groups SET ai_summary = true")
        cur.execute("ANALYZE")
    settings = Settings(
        app_env="test",
        database_url=store.url,
        redis_url=args.redis_url,
        redis_namespace=NAME,
        jwt_secret="bench-secret-" + "x" * 32,
        # A model nobody answers for: were the tick to ask it, the tick would slow down.
        openai_api_key="bench-model-key" if args.summaries else None,
        openai_base_url="http://127.0.0.1:9/v1" if args.summaries else None,
    )
    database = store.bind()
    worker = build_worker(settings)
    broker = worker.broker
    results: dict = {"schedules": args.schedules, "summaries": args.summaries}
    with database.connection_context():
        # ours: the scheduler's tick message, run by a worker as in production
        reset(store)
        meter = CpuMeter(lambda: cpu_groups(store), children_label=None)
        started = time.perf_counter()
        with meter:
            made = run_tick(broker, store, args.threads)
        ours = time.perf_counter() - started
        results["ours"] = {
            "seconds": round(ours, 3),
            "jobs": made,
            "per_second": round(made / ours),
            "worker_threads": args.threads,
            "cpu_us_per_schedule": {
                name: round(seconds / made * 1e6) for name, seconds in meter.seconds.items()
            },
            "machine_busy": round(meter.machine_busy, 2),
            "checks": check(store, args.schedules),
        }
        print(f"ours: {made} digest jobs in {ours:.2f} s ({made / ours:,.0f}/s)")

        # naive: one schedule at a time, over a sample
        reset(store)
        started = time.perf_counter()
        done = naive_tick(broker, args.naive)
        naive = time.perf_counter() - started
        results["naive"] = {
            "schedules": done,
            "seconds": round(naive, 3),
            "per_second": round(done / naive),
            "extrapolated_seconds": round(naive / done * args.schedules, 1),
        }
        print(
            f"naive: {done} in {naive:.2f} s ({done / naive:,.0f}/s), "
            f"{naive / done * args.schedules:.0f} s extrapolated to {args.schedules}"
        )
    results["speedup"] = round(results["ours"]["per_second"] / results["naive"]["per_second"], 1)
    return results


def cpu_groups(store: BenchStore) -> dict[str, list[int]]:
    """The tick (this process: the worker's threads), the bench database's backends, Redis."""
    return {
        "tick": [os.getpid()],
        "postgres": store.backend_pids(),
        "redis": store.redis_pids(),
    }


def run_tick(broker, store: BenchStore, threads: int) -> int:
    """Send the tick as periodiq would and time a worker (maintenance queue only) through it,
    helpers included; return how many jobs it wrote."""
    worker = dramatiq.Worker(broker, queues={Queue.MAINTENANCE.value}, worker_threads=threads)
    worker.start()
    try:
        broker.get_actor(Actor.SCHEDULE_DUE_DIGESTS).send()
        # Done when the tick and every helper it sent are acknowledged (a message stays in
        # the queue's hash until then): a cheap Redis read, where counting the growing job
        # table every few milliseconds would load the database being measured.
        broker.join(Queue.MAINTENANCE.value, interval=10, timeout=600_000)
        worker.join()
    finally:
        worker.stop()
    with store.cursor() as cur:
        cur.execute("SELECT count(*) FROM notification_jobs")
        (jobs,) = cur.fetchone()
    return jobs


def reset(store: BenchStore) -> None:
    """No digest job, every schedule due, nothing on the broker."""
    store.truncate_jobs()
    with store.cursor() as cur:
        cur.execute(MAKE_DUE)
        cur.execute("VACUUM ANALYZE digest_schedules")
    store.purge_redis()


def check(store: BenchStore, expected: int) -> dict:
    with store.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT digest_schedule_id), "
            "count(*) FILTER (WHERE status = 'queued') FROM notification_jobs"
        )
        jobs, schedules, queued = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM digest_schedules "
            "WHERE next_digest_scheduled <= now() at time zone 'utc'"
        )
        (still_due,) = cur.fetchone()
    _, queue = route(JobKind.DIGEST, "normal")
    messages = store.redis.hlen(f"{NAME}:{queue}.msgs")
    checks = {
        "jobs": jobs,
        "schedules_with_a_job": schedules,
        "queued": queued,
        "still_due": still_due,
        "messages_in_redis": messages,
    }
    ok = jobs == schedules == queued == expected and still_due == 0 and messages > 0
    checks["ok"] = ok
    if not ok:
        print(f"CHECK FAILED: {checks}", file=sys.stderr)
    return checks


def naive_tick(broker, limit: int) -> int:
    """The obvious way: a query, a job, a save and a send per schedule, each on its own."""
    actor = broker.get_actor(route(JobKind.DIGEST, "normal")[0])
    done = 0
    while done < limit:
        now = datetime.now(UTC)
        with db.database.atomic():
            schedule = (
                DigestSchedule.select()
                .where(
                    DigestSchedule.is_active == True,  # noqa: E712
                    DigestSchedule.next_digest_scheduled <= now,
                )
                .order_by(DigestSchedule.next_digest_scheduled)
                .for_update()
                .first()
            )
            if schedule is None:
                break
            job = NotificationJob.create(
                id=uuid.uuid4(),
                kind=JobKind.DIGEST,
                status=JobStatus.QUEUED,
                owner=schedule.owner_id,
                recipient=schedule.recipient_id,
                group=schedule.group_id,
                digest_schedule=schedule.id,
                digest_period=schedule.next_digest_scheduled,
                notification_type=NotificationType.DIGEST,
                content={"frequency": schedule.frequency, "window_end": now.isoformat()},
                scheduled_for=now,
                created_at=now,
                queued_at=now,
            )
            schedule.next_digest_scheduled = next_run_after(
                now,
                frequency=schedule.frequency,
                delivery_time=parse_delivery_time(schedule.delivery_time),
                delivery_day=schedule.delivery_day,
                timezone=schedule.timezone,
            )
            schedule.save()
        actor.send(str(job.id))
        done += 1
    return done


def write(results: dict) -> None:
    files = ResultFiles(RESULTS_DIR, "digest_tick", utc_stamp())
    machine = machine_basics(["dramatiq", "peewee", "psycopg2-binary", "redis", "tzdata"])
    markdown = render_markdown(results, machine, files)
    files.write({"machine": machine, "results": results}, markdown)
    print(f"results: {relative(files.markdown)}")


def render_markdown(results: dict, machine: dict, files: ResultFiles) -> str:
    ours = results["ours"]
    met = ours["seconds"] < TARGET_SECONDS and ours["checks"]["ok"]
    lines = [
        "# Digest tick benchmark (latest run)",
        "",
        f"Run {files.stamp} by `bench/digest_tick.py`; raw figures in `{relative(files.raw)}`.",
        "",
        f"- machine: {machine['nproc']} CPUs ({machine['cpu_model']}), load average at start "
        f"{' / '.join(map(str, machine['loadavg_at_start']))}, Python {machine['python']}, "
        f"git {machine['git']}",
        "- PostgreSQL and Redis on 127.0.0.1; the tick runs in this process with the worker's "
        "Redis broker (`build_worker`), as the scheduler's message runs it in a worker",
        "- AI summaries: "
        + (
            "every group opted in and a model configured (`--summaries`)"
            if results.get("summaries")
            else "off"
        ),
        "",
        "| target | measured | |",
        "|---|---:|---|",
        f"| {results['schedules']:,} due schedules turned into digest jobs < "
        f"{TARGET_SECONDS:g} s | {ours['seconds']:.2f} s | **{'met' if met else 'missed'}** |",
        "",
        *_variants(results),
        "",
        "CPU per schedule during ours, in microseconds, by process group (`postgres`: the bench "
        "database's backends alive at the end; `other`: the rest of the machine, i.e. noise), "
        f"machine busy {ours['machine_busy']:.0%}:",
        "",
        "| " + " | ".join(ours["cpu_us_per_schedule"]) + " |",
        "|" + "---:|" * len(ours["cpu_us_per_schedule"]),
        "| " + " | ".join(f"{v:,}" for v in ours["cpu_us_per_schedule"].values()) + " |",
        "",
    ]
    return "\n".join(lines)


def _variants(results: dict) -> list[str]:
    ours, naive = results["ours"], results["naive"]
    return [
        "| variant | schedules | seconds | schedules/s |",
        "|---|---:|---:|---:|",
        f"| ours: the tick message on a worker of {ours['worker_threads']} threads (batches of "
        f"1,000: one locked SELECT, one INSERT ... SELECT, one UPDATE joined to VALUES, "
        f"pipelined hand-over; helper ticks for a backlog) | {ours['jobs']:,} | "
        f"{ours['seconds']:.2f} | {ours['per_second']:,} |",
        f"| naive: one schedule per transaction (SELECT ... FOR UPDATE, INSERT, UPDATE, send) | "
        f"{naive['schedules']:,} | {naive['seconds']:.2f} "
        f"(~{naive['extrapolated_seconds']:,.0f} for {results['schedules']:,}) | "
        f"{naive['per_second']:,} |",
        "",
        f"Ours is {results['speedup']}x the naive loop's rate. Checks after ours: "
        f"`{json.dumps(ours['checks'])}`.",
    ]


if __name__ == "__main__":
    main()
