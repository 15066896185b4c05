"""How fast is an update to a group of 5,000 recipients accepted?

Posts updates through the real API in-process (``falcon.testing``: our code, PostgreSQL and the
real Redis broker, no HTTP server) to a group of ``--recipients`` recipients, in a database
(``tribe_bench_fanout``) and Redis namespace of its own, and reports each post's time. Target:
well under a second.

    .venv/bin/python bench/update_fanout.py [--recipients 5000] [--posts 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from falcon import testing

from tribe_api.app import create_app
from tribe_api.auth import mint_token
from tribe_shared import db
from tribe_shared.migrate import apply_migrations
from tribe_shared.models import Group, GroupMembership, Recipient, User
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import Settings

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
NAME = "tribe_bench_fanout"
RESULTS = Path(__file__).with_name("results")
SECRET = "bench-secret-" + "x" * 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--posts", type=int, default=5)
    args = parser.parse_args()
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{NAME}"')
    settings = Settings(
        app_env="test",
        database_url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{NAME}",
        redis_url=REDIS_URL,
        redis_namespace=NAME,
        jwt_secret=SECRET,
    )
    broker = build_broker(settings)
    try:
        database = db.bind(settings.database_url)
        with database.connection_context():
            apply_migrations(database)
            owner, group = family(args.recipients)
        api = testing.TestClient(create_app(settings, broker=broker))
        headers = {"Authorization": f"Bearer {mint_token(SECRET, user_id=owner)}"}
        body = {"group_id": str(group), "content_type": "text", "title": "First steps"}
        timings = []
        for _ in range(args.posts):
            started = time.perf_counter()
            response = api.simulate_post("/api/updates", json=body, headers=headers)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
            assert response.json["notifications"]["queued"] == args.recipients
            print(f"accepted in {timings[-1] * 1000:.0f} ms")
    finally:
        for key in broker.client.scan_iter(f"{NAME}:*"):
            broker.client.delete(key)
        database.close_all()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.close()
    write(args, timings)


def family(size: int) -> tuple[uuid.UUID, uuid.UUID]:
    owner = User.create(id=uuid.uuid4())
    group = Group.create(owner=owner, name="Everyone")
    recipients = [
        {"id": uuid.uuid4(), "owner": owner.id, "name": f"R{i}", "email": f"r{i}@example.com"}
        for i in range(size)
    ]
    with db.database.atomic():
        for start in range(0, size, 500):
            chunk = recipients[start : start + 500]
            Recipient.insert_many(chunk).execute()
            GroupMembership.insert_many(
                [{"id": uuid.uuid4(), "group": group.id, "recipient": r["id"]} for r in chunk]
            ).execute()
    return owner.id, group.id


def write(args, timings: list[float]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    median_ms = statistics.median(timings) * 1000
    result = {
        "run_at": stamp,
        "recipients": args.recipients,
        "posts_ms": [round(t * 1000, 1) for t in timings],
        "median_ms": round(median_ms, 1),
        "target_ms": 1000,
    }
    (RESULTS / f"update_fanout-{stamp}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "update_fanout.md").write_text(
        "# Update fan-out benchmark (latest run)\n\n"
        f"Run {stamp} by `bench/update_fanout.py`: an update to a group of "
        f"{args.recipients:,} recipients, through the API in-process on PostgreSQL and Redis.\n\n"
        f"Posts: {', '.join(f'{t * 1000:.0f} ms' for t in timings)}; median **{median_ms:.0f} ms** "
        f"(target well under 1,000 ms: **{'met' if median_ms < 1000 else 'missed'}**).\n"
    )


if __name__ == "__main__":
    main()
