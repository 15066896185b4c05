"""Periodic ticks when Redis is down: the scheduler (periodiq) skips the tick and lives on.

Found by the fault suite: periodiq's main loop ended the scheduler process at the first tick it
could not send, so after a Redis outage no relay, reaper or digest tick came again.
"""

from __future__ import annotations

import pytest
import redis

from tests.support.fakes.redis_server import free_port
from tribe_shared.contract import PERIODIC_ACTORS, Actor
from tribe_shared.settings import Settings
from tribe_worker.worker import build_worker

TICKS = PERIODIC_ACTORS


@pytest.fixture
def worker_without_redis(sqlite_url):
    """The worker's actors on a Redis broker whose server is not running."""
    settings = Settings(
        app_env="test", database_url=sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    worker = build_worker(settings)
    yield worker
    worker.broker.close()


@pytest.mark.parametrize("tick", TICKS)
def test_a_tick_that_cannot_reach_the_broker_is_skipped_not_raised(worker_without_redis, tick):
    # When periodiq sends a tick while Redis is down
    sent = worker_without_redis.actors[tick].send_with_options(
        scheduled_at="2026-01-01T00:00:00+00:00"
    )

    # Then the scheduler goes on: nothing was sent, nothing raised
    assert sent is None


def test_a_job_message_that_cannot_reach_the_broker_still_raises(worker_without_redis):
    # (handing a job over must fail loudly: its caller leaves the job pending for the relay)
    with pytest.raises(redis.ConnectionError):
        worker_without_redis.actors[Actor.SEND_EMAIL].send("00000000-0000-0000-0000-000000000000")
