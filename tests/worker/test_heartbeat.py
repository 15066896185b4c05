"""The worker heartbeat (``{REDIS_NAMESPACE}:worker-heartbeats``): written at boot and every
interval while a worker runs, removed when it stops cleanly; none without Redis (development).
Real Redis, in-process workers."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker

from tests.conftest import JWT_SECRET
from tests.support.waiting import wait_until
from tests.support.workers import running_worker
from tribe_shared.contract import worker_heartbeats_key
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import Settings
from tribe_worker.middleware import WorkerHeartbeat
from tribe_worker.worker import build_worker

MEMBER = f"{socket.gethostname()}:{os.getpid()}"
#: The worker's clock.
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.mark.redis
def test_a_worker_on_redis_beats_while_it_runs_and_removes_its_beat_when_it_stops(
    redis_url, redis_namespace, sqlite_url, client
):
    # Given the production worker on a Redis broker
    settings = Settings(
        app_env="test",
        database_url=sqlite_url,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        jwt_secret=JWT_SECRET,
    )
    broker = build_broker(settings)
    build_worker(settings, broker=broker, clock=lambda: NOW)
    key = worker_heartbeats_key(redis_namespace)
    assert key == f"{redis_namespace}:worker-heartbeats"

    # When it runs, its process has a heartbeat scored with the worker's clock
    try:
        with running_worker(broker, threads=1):
            score = wait_until(lambda: client.zscore(key, MEMBER), what="the heartbeat")
            assert score == NOW.timestamp()

        # Then after a clean stop it is gone
        assert client.zscore(key, MEMBER) is None
    finally:
        broker.close()


@pytest.mark.redis
def test_the_heartbeat_is_written_again_every_interval(redis_namespace, client):
    # A clock one second further on at each beat
    ticks = itertools.count(1_900_000_000.0)
    key = worker_heartbeats_key(redis_namespace)
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(
        WorkerHeartbeat(client, key=key, interval=0.05, clock=lambda: next(ticks))
    )
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        first = wait_until(lambda: client.zscore(key, MEMBER), what="the first beat")
        wait_until(lambda: client.zscore(key, MEMBER) > first, what="a later beat")
    finally:
        worker.stop()
        broker.close()
    assert client.zscore(key, MEMBER) is None


def test_without_redis_a_worker_writes_no_heartbeat(worker_app):
    assert not any(isinstance(m, WorkerHeartbeat) for m in worker_app.broker.middleware)
