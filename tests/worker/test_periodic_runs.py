"""Each periodic task records its last successful run in Redis
(``{REDIS_NAMESPACE}:scheduler-last-run``), where the API's health and metrics watch it: a
scheduler that died quietly shows as tasks whose last run grows old."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from dramatiq.brokers.stub import StubBroker

from tests.support.waiting import drain
from tests.support.workers import running_worker
from tribe_shared.contract import PERIODIC_ACTORS, Actor, scheduler_runs_key
from tribe_worker.worker import build_worker

pytestmark = pytest.mark.redis


@pytest.fixture
def recording_worker(redis_settings, redis_client):
    """The worker's actors on a stub broker of their own, recording runs in the real Redis,
    with a worker running them."""
    broker = StubBroker(fail_fast_default=False)
    broker.emit_after("process_boot")
    # A relay tick that does not repeat within its minute: one run, then it is done
    settings = replace(redis_settings, outbox_poll_seconds=60)
    worker = build_worker(settings, broker=broker, redis_client=redis_client)
    with running_worker(broker) as running:
        yield worker, running
    broker.close()


def run_tick(recording_worker, actor: str, *args) -> None:
    worker, running = recording_worker
    message = worker.actors[actor].send(*args)
    drain(worker.broker, running, message.queue_name)


def last_runs(client, namespace) -> dict[str, float]:
    raw = client.hgetall(scheduler_runs_key(namespace))
    return {task.decode(): float(at) for task, at in raw.items()}


@pytest.mark.parametrize("task", PERIODIC_ACTORS)
def test_a_periodic_task_that_ran_records_when(
    recording_worker, redis_client, redis_settings, task
):
    before = time.time()

    # When the scheduler's tick for the task is processed
    run_tick(recording_worker, task)

    # Then its last run is now
    runs = last_runs(redis_client, redis_settings.redis_namespace)
    assert before <= runs[task] <= time.time()


def test_a_delivery_actor_records_no_run(recording_worker, redis_client, redis_settings):
    run_tick(recording_worker, Actor.SEND_EMAIL, "00000000-0000-0000-0000-000000000000")

    assert last_runs(redis_client, redis_settings.redis_namespace) == {}


def test_a_periodic_task_that_failed_records_no_run(
    recording_worker, redis_client, redis_settings, database_down
):
    # Given the database is unreachable: the reaper's tick fails
    run_tick(recording_worker, Actor.REAP_STUCK_JOBS)

    assert Actor.REAP_STUCK_JOBS not in last_runs(redis_client, redis_settings.redis_namespace)
