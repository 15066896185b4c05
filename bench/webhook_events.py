"""How fast does ``POST /api/webhooks/sendgrid`` take SendGrid's batches, with 1,000,000 jobs?

Fills a database of its own (``tribe_bench_webhook``) with a million ``sent`` jobs, serves the
real API under gunicorn (the Procfile's config, production settings, a webhook key of the
bench's own), and posts signed batches of 1,000 events of a realistic mix (processed,
delivered, opens, clicks, a few deferrals, bounces and blocks, drops, spam reports and
unsubscribes, each for a random job) from concurrent clients, as SendGrid would. Reports the
events stored and applied per second and the batch latency (p50, p99). Target: at least
10,000 events/s and p99 under 500 ms per batch (SendGrid retries slow answers).

    .venv/bin/python bench/webhook_events.py [--jobs 1000000] [--batches 200] [--clients 2]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from common import product
from common.paths import RESULTS_DIR
from common.processes import Gunicorn
from common.results import ResultFiles, utc_stamp
from common.store import DEFAULT_POSTGRES_URL, BenchStore
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

NAME = "tribe_bench_webhook"
BATCH = 1000
TARGET_EVENTS_PER_SECOND = 10_000
TARGET_P99_MS = 500
#: The share of each event type in a batch (SendGrid's typical stream: most emails are
#: processed and delivered, a third opened, a few clicked; a little of everything else).
MIX = {
    "processed": 0.34,
    "delivered": 0.34,
    "open": 0.18,
    "click": 0.05,
    "deferred": 0.03,
    "bounce": 0.02,
    "dropped": 0.01,
    "spamreport": 0.01,
    "unsubscribe": 0.01,
    "group_unsubscribe": 0.01,
}


def fill_jobs(store: BenchStore, count: int) -> None:
    """``count`` sent email jobs, in one INSERT … SELECT (skipped if they are there)."""
    with store.cursor() as cur:
        cur.execute("SELECT count(*) FROM notification_jobs")
        if cur.fetchone()[0] >= count:
            return
        cur.execute("TRUNCATE notification_jobs, email_events, email_suppressions CASCADE")
        cur.execute(
            "INSERT INTO notification_jobs (id, kind, status, to_email, notification_type, "
            "urgency, delivery_method, content, scheduled_for, created_at, processed_at, "
            "attempts, retry_count, lease_losses, message_id) "
            "SELECT gen_random_uuid(), 'email', 'sent', 'user' || i || '@example.com', "
            "'immediate', 'normal', 'email', '{}'::jsonb, now() - i * interval '1 second', "
            "now() - i * interval '1 second', now() - i * interval '1 second', 1, 0, 0, "
            "md5(i::text) FROM generate_series(1, %s) AS i",
            (count,),
        )
        cur.execute("VACUUM ANALYZE notification_jobs")


def job_ids(store: BenchStore) -> list[str]:
    with store.cursor() as cur:
        cur.execute("SELECT id::text FROM notification_jobs")
        return [row[0] for row in cur.fetchall()]


def make_batch(ids: list[str], rng: random.Random, now: int) -> bytes:
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=BATCH)
    events = []
    for kind in kinds:
        job = rng.choice(ids)
        event = {
            "email": f"u{rng.randrange(10**6)}@example.com",
            "timestamp": now - rng.randrange(600),
            "event": kind,
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648",
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "category": ["update"],
            "job_id": job,
        }
        if kind in ("delivered", "deferred"):
            event["response"] = "250 OK" if kind == "delivered" else "421 try again later"
        if kind == "bounce":
            event["type"] = rng.choice(["bounce", "blocked"])
            event["reason"] = "550 5.1.1 The email account does not exist"
        if kind == "dropped":
            event["reason"] = "Invalid"
        if kind in ("open", "click"):
            event["useragent"] = "Mozilla/5.0"
            event["ip"] = "192.0.2.1"
        if kind == "click":
            event["url"] = "https://photos.example.com/1.jpg"
        events.append(event)
    return json.dumps(events).encode()


def sign(key, body: bytes) -> dict:
    stamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def post_batches(port: int, key, bodies: list[bytes], latencies: list, errors: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for body in bodies:
        started = time.perf_counter()
        connection.request("POST", "/api/webhooks/sendgrid", body, sign(key, body))
        response = connection.getresponse()
        payload = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            errors.append(f"{response.status}: {payload[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()

    store = BenchStore(args.postgres_url, NAME, None, "bench-webhook")
    store.create()
    started = time.perf_counter()
    fill_jobs(store, args.jobs)
    fill_seconds = time.perf_counter() - started
    ids = job_ids(store)
    key = ec.generate_private_key(ec.SECP256R1())
    rng = random.Random(20261206)
    now = int(time.time())
    bodies = [make_batch(ids, rng, now) for _ in range(args.batches)]
    server = Gunicorn(
        "webhook",
        "tribe_api.wsgi:app",
        api_environment(store, key, args.workers),
        Path(tempfile.mkdtemp(prefix="bench-webhook-")),
    )
    server.wait_ready()
    try:
        post_batches(server.port, key, bodies[:2], [], [])  # warm up: connections, statements
        shares = [bodies[2 + n :: args.clients] for n in range(args.clients)]
        latencies, errors, wall = post_concurrently(server.port, key, shares)
    finally:
        server.stop()
    events = sum(len(s) for s in shares) * BATCH
    publish(args, fill_seconds, events, wall, latencies, errors)


def api_environment(store: BenchStore, key, workers: int) -> dict[str, str]:
    """The API's production environment on the bench's database, verifying with ``key``."""
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    return {
        **product.DELIVERY_VARIABLES,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
        "APP_ENV": "production",
        "DATABASE_URL": store.url,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_NAMESPACE": "bench-webhook",
        "JWT_SECRET": "bench-secret-" + "x" * 32,
        "SENDGRID_API_KEY": "bench-unused",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": "2",
        "PATH": "/usr/bin:/bin",
    }


def post_concurrently(port: int, key, shares: list[list]) -> tuple[list[float], list[str], float]:
    """Each share posted by a client thread of its own; (latencies in ms, errors, wall s)."""
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=post_batches, args=(port, key, share, latencies, errors))
        for share in shares
    ]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - wall


def publish(args, fill_seconds: float, events: int, wall: float, latencies, errors) -> None:
    """The run's figures: the raw result file and the readable one."""
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    report = {
        "jobs": args.jobs,
        "batches": len(latencies),
        "events_per_batch": BATCH,
        "clients": args.clients,
        "gunicorn_workers": args.workers,
        "fill_seconds": round(fill_seconds, 1),
        "events_per_second": round(events / wall),
        "batch_ms_p50": round(statistics.median(latencies), 1),
        "batch_ms_p99": round(p99, 1),
        "batch_ms_max": round(latencies[-1], 1),
        "errors": errors[:5],
        "target": {"events_per_second": TARGET_EVENTS_PER_SECOND, "p99_ms": TARGET_P99_MS},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "mix": MIX,
    }
    files = ResultFiles(RESULTS_DIR, "webhook_events", utc_stamp())
    met = (
        report["events_per_second"] >= TARGET_EVENTS_PER_SECOND and p99 < TARGET_P99_MS
    ) and not errors
    markdown = "\n".join(
        [
            "# webhook_events: SendGrid's signed event webhook against 1M jobs",
            "",
            f"`{files.raw.name}`: {len(latencies)} signed batches of {BATCH} events from "
            f"{args.clients} clients, gunicorn with {args.workers} workers x 2 threads, "
            f"PostgreSQL, {args.jobs:,} sent jobs, on {report['machine']['cpus']} shared cores.",
            "",
            "| events stored and applied/s | batch p50 | batch p99 | max | errors | target met |",
            "|---|---|---|---|---|---|",
            f"| {report['events_per_second']:,} | {report['batch_ms_p50']} ms | "
            f"{report['batch_ms_p99']} ms | {report['batch_ms_max']} ms | {len(errors)} | "
            f"{'yes' if met else 'no'} (>= {TARGET_EVENTS_PER_SECOND:,}/s, p99 < "
            f"{TARGET_P99_MS} ms) |",
            "",
        ]
    )
    files.publish(report, markdown)


if __name__ == "__main__":
    main()
