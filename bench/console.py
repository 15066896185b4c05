"""How fast is each page of the operator console (``/admin``) with 1,000,000 jobs in PostgreSQL?

Fills a database of its own (``tribe_bench_console``) with families, ``--rows`` jobs (a tenth
failed, some of bulk requests, some of updates, some digests, a few still waiting), delivery
logs for the failed ones of one request, digest schedules and suppressions; signs in as an
operator and calls each page in-process (``falcon.testing``: our queries, templates and Redis
reads, no HTTP server) and reports p50/p95 per page. Target (issue #16): p95 under 200 ms.

    .venv/bin/python bench/console.py [--rows 1000000] [--requests 100] [--keep-db]
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import redis
from common.paths import RESULTS_DIR
from common.product import Settings, create_app, mint_service_role_key
from common.results import ResultFiles, utc_stamp
from common.store import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, BenchStore, families_sql
from falcon import testing

NAME = "tribe_bench_console"
SECRET = "bench-secret-" + "x" * 32
USERS = 20
RECIPIENTS_PER_USER = 50
TARGET_P95_MS = 200

JOBS = """
INSERT INTO updates (id, owner_id, group_id, content_type, title, body, media_urls, created_at)
SELECT md5('update' || u)::uuid, md5('user1')::uuid, md5('group1')::uuid, 'photo', 'Update',
       '', '[]'::jsonb, now()
FROM generate_series(0, {rows} / 1000) u;
INSERT INTO notification_jobs (
    id, kind, status, owner_id, created_by_id, recipient_id, group_id, update_id, to_email,
    notification_type, urgency, delivery_method, content, scheduled_for, created_at,
    queued_at, processed_at, attempts, retry_count, lease_losses, failure_reason, request_id)
SELECT gen_random_uuid(),
       CASE WHEN j % 7 = 0 THEN 'digest' WHEN j % 3 = 0 THEN 'email' ELSE 'notification' END,
       (ARRAY['sent','sent','sent','sent','sent','sent','failed','pending','queued','skipped'])
           [1 + (j / 13) % 10],
       md5('user' || (r % {users} + 1))::uuid, md5('user' || (r % {users} + 1))::uuid,
       md5('recipient' || r)::uuid, md5('group' || (r % {users} + 1))::uuid,
       CASE WHEN j % 11 = 0 THEN md5('update' || (j / 1000))::uuid END,
       'r' || r || '@example.com',
       CASE WHEN j % 7 = 0 THEN 'digest' ELSE 'immediate' END, 'normal',
       CASE WHEN j % 50 = 0 THEN 'sms' ELSE 'email' END, '{{"title": "Hi"}}'::jsonb,
       ts, ts, ts, CASE WHEN (j / 13) % 10 < 7 THEN ts + interval '2 seconds' END, 1, 0, 0,
       CASE WHEN (j / 13) % 10 = 6 THEN 'SendGrid answered 503' END,
       CASE WHEN j % 3 = 0 THEN 'req-' || (j / 1000) END
FROM (
    SELECT j, 1 + (j::bigint * 7919) % {recipients} AS r,
           now() - (j || ' seconds')::interval AS ts
    FROM generate_series(1, {rows}) j
) s;
INSERT INTO notification_delivery_logs (id, job_id, attempt, provider, status, error,
                                        duration_ms, created_at)
SELECT gen_random_uuid(), id, a, 'sendgrid', 'transient_failure', 'SendGrid answered 503', 120,
       created_at + (a || ' seconds')::interval
FROM notification_jobs, generate_series(1, 3) a
WHERE request_id = 'req-5' AND status = 'failed';
INSERT INTO digest_schedules (id, owner_id, recipient_id, group_id, frequency, delivery_time,
    timezone, is_active, max_updates_per_digest, include_content_types, next_digest_scheduled,
    created_at, updated_at)
SELECT md5('schedule' || r)::uuid, md5('user' || (r % {users} + 1))::uuid,
       md5('recipient' || r)::uuid, md5('group' || (r % {users} + 1))::uuid, 'daily',
       '18:00:00', 'Europe/London', r % 10 <> 0, 10, '[]'::jsonb,
       now() + ((r % 1440) || ' minutes')::interval, now(), now()
FROM generate_series(1, {recipients}) r;
INSERT INTO email_suppressions (email, reason, source, soft_bounces, suppressed_at,
                                created_at, updated_at)
SELECT 'bounced' || s || '@example.com', 'bounced', 'sendgrid:bounce', 0,
       now() - (s || ' minutes')::interval, now(), now()
FROM generate_series(1, 5000) s;
ANALYZE;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the database, and reuse one kept before"
    )
    args = parser.parse_args()

    store = BenchStore(DEFAULT_POSTGRES_URL, NAME, DEFAULT_REDIS_URL, NAME)
    if not (args.keep_db and filled_already(store.url, args.rows)):
        store.create(fresh=True)
        fill(store, args.rows)
    try:
        store.bind()
        results = run(store.url, args.requests)
    finally:
        store.close(drop=not args.keep_db)
    write(results, args)


def filled_already(url: str, rows: int) -> bool:
    """A database a run with ``--keep-db`` left, holding ``rows`` jobs (its fill is reused)."""
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM notification_jobs")
            return cur.fetchone()[0] == rows
    except psycopg2.Error:
        return False
    finally:
        conn.close()


def fill(store: BenchStore, rows: int) -> None:
    recipients = USERS * RECIPIENTS_PER_USER
    started = time.perf_counter()
    with store.cursor() as cur:
        cur.execute(
            families_sql(USERS, recipients)
            + JOBS.format(users=USERS, recipients=recipients, rows=rows)
        )
        print(f"filled {rows} jobs in {time.perf_counter() - started:.1f} s")
        cur.execute("VACUUM ANALYZE notification_jobs")


def signed_in(api) -> dict[str, str]:
    key = mint_service_role_key(SECRET)
    response = api.simulate_post(
        "/admin/sign-in",
        body=f"name=bench&token={key}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    return {"Cookie": f"tribe_console={response.cookies['tribe_console'].value}"}


def pages(api, session) -> list[tuple[str, str]]:
    """(name, path) of each page measured; the ids and cursors read from the pages."""
    failed = api.simulate_get("/admin/jobs?status=failed&request_id=req-5", headers=session)
    job = re.search(r'href="/admin/jobs/([0-9a-f-]{36})"', failed.text).group(1)
    first = api.simulate_get("/admin/jobs", headers=session)
    cursor = re.search(r'after=([^"]+)"', first.text).group(1).replace("&amp;", "&")
    day_ago = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return [
        ("overview", "/admin"),
        ("jobs: newest", "/admin/jobs"),
        ("jobs: next page (keyset)", f"/admin/jobs?after={cursor}"),
        ("jobs: failed", "/admin/jobs?status=failed"),
        ("jobs: by address", "/admin/jobs?to=r20%40example.com"),
        ("jobs: by request", "/admin/jobs?request_id=req-5"),
        ("jobs: digests, failed", "/admin/jobs?kind=digest&status=failed"),
        ("jobs: created in the last day", f"/admin/jobs?created_after={day_ago}"),
        ("job: detail and timeline", f"/admin/jobs/{job}"),
        ("bulk: confirm retry of a request", "/admin/bulk?action=retry&request_id=req-5"),
        ("bulk: confirm retry of all failed", "/admin/bulk?action=retry&status=failed"),
        ("digests", "/admin/digests"),
        ("suppressions", "/admin/suppressions"),
    ]


def run(url: str, requests: int) -> list[dict]:
    settings = Settings(
        app_env="test", database_url=url, jwt_secret=SECRET, redis_url=DEFAULT_REDIS_URL,
        redis_namespace=NAME,
    )  # fmt: skip
    client = redis.Redis.from_url(DEFAULT_REDIS_URL)
    api = testing.TestClient(create_app(settings, redis_client=client))
    session = signed_in(api)
    results = []
    for name, path in pages(api, session):
        for _ in range(3):  # warm-up
            api.simulate_get(path, headers=session)
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = api.simulate_get(path, headers=session)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        results.append(
            {
                "page": name,
                "path": path,
                "bytes": len(response.content),
                "p50_ms": round(statistics.median(timings), 2),
                "p95_ms": round(percentile(timings, 0.95), 2),
                "max_ms": round(max(timings), 2),
            }
        )
        row = results[-1]
        print(f"{name:36s} p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms")
    return results


def write(results: list[dict], args) -> None:
    files = ResultFiles(RESULTS_DIR, "console", utc_stamp())
    worst = max(r["p95_ms"] for r in results)
    met = worst < TARGET_P95_MS
    meta = {
        "run_at": files.stamp,
        "rows": args.rows,
        "requests_per_page": args.requests,
        "python": platform.python_version(),
        "target_p95_ms": TARGET_P95_MS,
        "worst_p95_ms": worst,
        "met": met,
    }
    lines = [
        "# Console pages benchmark (latest run)",
        "",
        f"Run {files.stamp} by `bench/console.py`: {args.rows:,} jobs in PostgreSQL, "
        f"{args.requests} in-process requests per page after a warm-up (falcon.testing: our "
        "queries, templates and Redis reads; no HTTP server), signed in as an operator.",
        "",
        "| page | path | p50 ms | p95 ms | max ms |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['page']} | `{r['path'][:60]}` | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |"
        for r in results
    ]
    lines += [
        "",
        f"Worst p95: **{worst} ms** (target < {TARGET_P95_MS} ms: "
        f"**{'met' if met else 'missed'}**).",
    ]
    files.write({"meta": meta, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
