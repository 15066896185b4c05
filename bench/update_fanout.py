"""How fast is an update to a group of 5,000 recipients accepted?

Posts updates through the real API in-process (``falcon.testing``: our code, PostgreSQL and the
real Redis broker, no HTTP server) to a group of ``--recipients`` recipients, in a database
(``tribe_bench_fanout``) and Redis namespace of its own, and reports each post's time. Target:
well under a second.

    .venv/bin/python bench/update_fanout.py [--recipients 5000] [--posts 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from common.paths import RESULTS_DIR
from common.product import (
    Group,
    GroupMembership,
    Recipient,
    Settings,
    User,
    build_broker,
    create_app,
    db,
    mint_token,
)
from common.results import ResultFiles, utc_stamp
from common.store import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, BenchStore
from falcon import testing

NAME = "tribe_bench_fanout"
SECRET = "bench-secret-" + "x" * 32
TARGET_MS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--posts", type=int, default=5)
    args = parser.parse_args()
    store = BenchStore(DEFAULT_POSTGRES_URL, NAME, DEFAULT_REDIS_URL, NAME)
    store.create(fresh=True)
    try:
        timings = post_updates(store, args.recipients, args.posts)
    finally:
        store.close(drop=True)
    write(args, timings)


def post_updates(store: BenchStore, recipients: int, posts: int) -> list[float]:
    """Seconds each of ``posts`` updates to a group of ``recipients`` took to be accepted."""
    settings = Settings(
        app_env="test",
        database_url=store.url,
        redis_url=DEFAULT_REDIS_URL,
        redis_namespace=NAME,
        jwt_secret=SECRET,
    )
    with store.bind().connection_context():
        owner, group = family(recipients)
    api = testing.TestClient(create_app(settings, broker=build_broker(settings)))
    headers = {"Authorization": f"Bearer {mint_token(SECRET, user_id=owner)}"}
    body = {"group_id": str(group), "content_type": "text", "title": "First steps"}
    timings = []
    for _ in range(posts):
        started = time.perf_counter()
        response = api.simulate_post("/api/updates", json=body, headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 202, response.text
        assert response.json["notifications"]["queued"] == recipients
        print(f"accepted in {timings[-1] * 1000:.0f} ms")
    return timings


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
    files = ResultFiles(RESULTS_DIR, "update_fanout", utc_stamp())
    median_ms = statistics.median(timings) * 1000
    result = {
        "run_at": files.stamp,
        "recipients": args.recipients,
        "posts_ms": [round(t * 1000, 1) for t in timings],
        "median_ms": round(median_ms, 1),
        "target_ms": TARGET_MS,
    }
    met = "met" if median_ms < TARGET_MS else "missed"
    files.write(
        result,
        "# Update fan-out benchmark (latest run)\n\n"
        f"Run {files.stamp} by `bench/update_fanout.py`: an update to a group of "
        f"{args.recipients:,} recipients, through the API in-process on PostgreSQL and Redis.\n\n"
        f"Posts: {', '.join(f'{t * 1000:.0f} ms' for t in timings)}; median **{median_ms:.0f} ms** "
        f"(target well under {TARGET_MS:,} ms: **{met}**).\n",
    )


if __name__ == "__main__":
    main()
