"""How fast is a page of ``GET /api/jobs`` with 1,000,000 jobs in PostgreSQL?

Fills a database of its own (``tribe_bench_jobs``) with users, recipients and a million jobs
spread over them, then calls the real API in-process (``falcon.testing``, no HTTP server: this
measures our query and serialization, not gunicorn) for typical filtered pages and reports
p50/p99 per scenario. Target: p99 under 20 ms.

    .venv/bin/python bench/jobs_list.py [--rows 1000000] [--requests 300] [--keep-db]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import time
import uuid

from common.paths import RESULTS_DIR
from common.product import Settings, create_app, mint_token
from common.results import ResultFiles, utc_stamp
from common.store import DEFAULT_POSTGRES_URL, BenchStore, families_sql
from falcon import testing

NAME = "tribe_bench_jobs"
SECRET = "bench-secret-" + "x" * 32
USERS = 20
RECIPIENTS_PER_USER = 50
TARGET_P99_MS = 20

JOBS = """
INSERT INTO notification_jobs (
    id, kind, status, owner_id, created_by_id, recipient_id, group_id, to_email,
    notification_type,
    urgency, delivery_method, content, scheduled_for, created_at, queued_at, processed_at,
    attempts, retry_count, lease_losses)
SELECT gen_random_uuid(), 'notification',
       (ARRAY['sent','sent','sent','sent','sent','sent','failed','pending','queued','skipped'])
           [1 + (j / 13) % 10],
       md5('user' || (r % {users} + 1))::uuid, md5('user' || (r % {users} + 1))::uuid,
       md5('recipient' || r)::uuid,
       md5('group' || (r % {users} + 1))::uuid, 'r' || r || '@example.com',
       CASE WHEN j % 7 = 0 THEN 'digest' ELSE 'immediate' END, 'normal',
       CASE WHEN j % 50 = 0 THEN 'sms' ELSE 'email' END, '{{"title": "Hi"}}'::jsonb,
       ts, ts, ts, CASE WHEN (j / 13) % 10 < 7 THEN ts + interval '2 seconds' END, 1, 0, 0
FROM (
    SELECT j, 1 + (j::bigint * 7919) % {recipients} AS r,
           now() - (j || ' seconds')::interval AS ts
    FROM generate_series(1, {rows}) j
) s;
ANALYZE;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    store = BenchStore(DEFAULT_POSTGRES_URL, NAME, None, NAME)
    store.create(fresh=True)
    try:
        fill(store, args.rows)
        store.bind()
        results = run(store.url, args.requests)
    finally:
        store.close(drop=not args.keep_db)
    write(results, args)


def fill(store: BenchStore, rows: int) -> None:
    """``USERS`` families of ``RECIPIENTS_PER_USER`` recipients and ``rows`` jobs among them,
    vacuumed and analysed as autovacuum would leave them."""
    recipients = USERS * RECIPIENTS_PER_USER
    started = time.perf_counter()
    with store.cursor() as cur:
        cur.execute(
            families_sql(USERS, recipients)
            + JOBS.format(users=USERS, recipients=recipients, rows=rows)
        )
        print(f"filled {rows} jobs in {time.perf_counter() - started:.1f} s")
        cur.execute("VACUUM ANALYZE notification_jobs")


def scenarios() -> list[tuple[str, dict, dict]]:
    """(name, headers, query) of each page: a user's, and the service role's."""
    user = uuid.UUID(bytes=bytes.fromhex(_md5("user1")))
    recipient = uuid.UUID(bytes=bytes.fromhex(_md5("recipient20")))
    group = uuid.UUID(bytes=bytes.fromhex(_md5("group1")))
    as_user = {"Authorization": f"Bearer {mint_token(SECRET, user_id=user)}"}
    as_service = {
        "Authorization": f"Bearer {mint_token(SECRET, user_id=uuid.uuid4(), role='service_role')}"
    }
    return [
        ("user: newest page", as_user, {}),
        ("user: failed, newest first", as_user, {"status": "failed"}),
        ("user: one recipient", as_user, {"recipient_id": str(recipient)}),
        (
            "user: group, by scheduled_for asc",
            as_user,
            {"group_id": str(group), "sort": "scheduled_for", "order": "asc"},
        ),
        ("user: sent, page 5", as_user, {"status": "sent", "offset": 200}),
        ("user: digests", as_user, {"notification_type": "digest"}),
        ("service: pending", as_service, {"status": "pending"}),
        ("service: digests", as_service, {"notification_type": "digest"}),
        ("service: immediate", as_service, {"notification_type": "immediate"}),
        (
            "service: sms, by processed_at",
            as_service,
            {"delivery_method": "sms", "sort": "processed_at"},
        ),
    ]


def run(url: str, requests: int) -> list[dict]:
    settings = Settings(app_env="test", database_url=url, jwt_secret=SECRET)
    api = testing.TestClient(create_app(settings))
    results = []
    for name, headers, params in scenarios():
        for _ in range(5):  # warm-up
            api.simulate_get("/api/jobs", params=params, headers=headers)
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = api.simulate_get("/api/jobs", params=params, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        body = response.json
        results.append(
            {
                "scenario": name,
                "params": params,
                "returned": len(body["jobs"]),
                "total": body["pagination"]["total"],
                "p50_ms": round(statistics.median(timings), 2),
                "p99_ms": round(percentile(timings, 0.99), 2),
                "max_ms": round(max(timings), 2),
            }
        )
        print(
            f"{name:40s} p50 {results[-1]['p50_ms']:6.2f} ms  p99 {results[-1]['p99_ms']:6.2f} ms"
            f"  ({results[-1]['returned']} of {results[-1]['total']})"
        )
    return results


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def write(results: list[dict], args) -> None:
    files = ResultFiles(RESULTS_DIR, "jobs_list", utc_stamp())
    worst = max(r["p99_ms"] for r in results)
    met = worst < TARGET_P99_MS
    meta = {
        "run_at": files.stamp,
        "rows": args.rows,
        "requests_per_scenario": args.requests,
        "python": platform.python_version(),
        "target_p99_ms": TARGET_P99_MS,
        "worst_p99_ms": worst,
        "met": met,
    }
    lines = [
        "# Job list benchmark (latest run)",
        "",
        f"Run {files.stamp} by `bench/jobs_list.py`: {args.rows:,} jobs in PostgreSQL, "
        f"{args.requests} in-process requests per scenario after a warm-up (falcon.testing: "
        "our query, auth and serialization; no HTTP server).",
        "",
        "| scenario | page | total | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['scenario']} | {r['returned']} | {r['total']:,} | {r['p50_ms']} | {r['p99_ms']} "
        f"| {r['max_ms']} |"
        for r in results
    ]
    lines += [
        "",
        f"Worst p99: **{worst} ms** (target < {TARGET_P99_MS} ms: "
        f"**{'met' if met else 'missed'}**).",
    ]
    files.write({"meta": meta, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
