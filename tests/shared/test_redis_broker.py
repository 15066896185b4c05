"""What we rely on inside Dramatiq's Redis broker (:mod:`tribe_shared.redis_broker`), checked
against a real Redis and a real worker: an upgrade of Dramatiq that changes its key layout, its
``dispatch`` script or its private helpers fails here first, by name."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.support.waiting import wait_until
from tribe_shared.contract import Queue
from tribe_shared.redis_broker import (
    CHECKED_DRAMATIQ,
    QUEUES,
    dead_letter_of,
    enqueue_many,
    forget_dead_letter,
    jobs_on_broker,
    read_dead_letters,
    read_depths,
    recover_dead_workers,
    total,
    waiting_list_key,
    waits_for_a_thread,
    work_queue_of,
)

pytestmark = pytest.mark.redis

LOCK = Path(__file__).resolve().parents[2] / "uv.lock"


def locked_version(package: str) -> str:
    match = re.search(
        rf'\[\[package\]\]\nname = "{package}"\nversion = "([^"]+)"', LOCK.read_text()
    )
    assert match, f"{package} is not in uv.lock"
    return match.group(1)


def test_the_installed_and_locked_dramatiq_is_the_one_these_functions_were_checked_against():
    assert dramatiq.__version__ == locked_version("dramatiq") == CHECKED_DRAMATIQ, (
        f"Dramatiq {dramatiq.__version__} (locked {locked_version('dramatiq')}) is not "
        f"{CHECKED_DRAMATIQ}: check every function of tribe_shared.redis_broker against the new "
        "RedisBroker (its keys, its dispatch script's arguments, _max_unpack_size), then update "
        "CHECKED_DRAMATIQ"
    )


@pytest.fixture
def broker(redis_url, redis_namespace):
    broker = RedisBroker(url=redis_url, namespace=redis_namespace, heartbeat_timeout=1000)
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def received(broker):
    """Job ids the actor ``take`` on ``emails`` received, as a real worker ran it."""
    seen: list[str] = []
    lock = threading.Lock()

    def take(job_id: str) -> None:
        with lock:
            seen.append(job_id)

    dramatiq.actor(take, actor_name="take", queue_name=Queue.EMAILS.value, broker=broker)
    return seen


def message(job_id: str, queue: str = Queue.EMAILS.value) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue, actor_name="take", args=(job_id,), kwargs={}, options={}
    )


def depths(broker) -> dict:
    pipe = broker.client.pipeline(transaction=False)
    depths_of = read_depths(pipe, broker.namespace)
    return depths_of(pipe.execute())


def test_messages_enqueued_many_at_once_are_stored_counted_and_consumed_like_enqueued_ones(
    broker, received
):
    # Given 3 messages due now and 2 delayed, enqueued in one round trip
    ids = [str(uuid.uuid4()) for _ in range(5)]
    enqueue_many(
        broker, [(message(i), None) for i in ids[:3]] + [(message(i), 200) for i in ids[3:]]
    )

    # Then the depth reads see them where the broker keeps them, and the stored ones are readable
    assert depths(broker)[Queue.EMAILS] == {"waiting": 3, "active": 0, "delayed": 2, "failed": 0}
    assert total(depths(broker))["waiting"] == 3
    assert set(depths(broker)) == set(QUEUES)
    assert jobs_on_broker(broker) == {uuid.UUID(i) for i in ids}

    # When a real worker runs, it consumes every one of them, the delayed ones on time
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        wait_until(lambda: sorted(received) == sorted(ids), what="all five messages consumed")
        wait_until(lambda: not jobs_on_broker(broker), what="every message acknowledged")
    finally:
        worker.stop()


def test_a_dead_letter_is_found_where_the_broker_keeps_it_and_can_be_dropped(broker):
    # Given a message that failed for good
    def fail(job_id: str) -> None:
        raise RuntimeError("no")

    dramatiq.actor(fail, actor_name="take", queue_name="emails", broker=broker, max_retries=0)
    job_id = str(uuid.uuid4())
    sent = broker.enqueue(message(job_id))
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        wait_until(lambda: depths(broker)[Queue.EMAILS]["failed"] == 1, what="a dead letter")
    finally:
        worker.stop()

    # Then it is read back with the job it carried, where the job's dead_letter says
    location = dead_letter_of(sent.asdict())
    (letter,) = read_dead_letters(broker.client, broker.namespace)
    assert (letter.location, letter.actor_name) == (location, "take")
    assert letter.job_ids == (uuid.UUID(job_id),)

    # When it is located from the message and forgotten
    queue, redis_id = location.rsplit(":", 1)
    assert queue == Queue.EMAILS.value
    assert broker.client.zscore(f"{broker.namespace}:{queue}.XQ", redis_id) is not None
    forget_dead_letter(broker, location)

    # Then nothing of it is left
    assert depths(broker)[Queue.EMAILS]["failed"] == 0
    assert read_dead_letters(broker.client, broker.namespace) == []
    assert broker.client.hlen(f"{broker.namespace}:{queue}.XQ.msgs") == 0


def test_the_messages_a_silent_worker_fetched_go_back_to_the_queue_at_once(broker, redis_url):
    # Given a message fetched by a worker that then went silent past the heartbeat timeout
    job_id = str(uuid.uuid4())
    enqueue_many(broker, [(message(job_id), None), (message(str(uuid.uuid4())), None)])
    silent = RedisBroker(url=redis_url, namespace=broker.namespace, heartbeat_timeout=1000)
    consumer = silent.consume(Queue.EMAILS.value, prefetch=2, timeout=100)
    fetched = [next(consumer), next(consumer)]
    assert all(m is not None for m in fetched)
    assert depths(broker)[Queue.EMAILS]["waiting"] == 0
    broker.client.zadd(f"{broker.namespace}:__heartbeats__", {silent.broker_id: 0})

    # When the dead-worker maintenance runs now
    recover_dead_workers(broker)

    # Then both are waiting again, and still seen as messages to come
    assert depths(broker)[Queue.EMAILS]["waiting"] == 2
    assert uuid.UUID(job_id) in jobs_on_broker(broker)
    consumer.close()
    silent.close()


def test_an_unreachable_broker_raises_an_error_the_outbox_treats_as_an_outage(redis_namespace):
    down = RedisBroker(url="redis://127.0.0.1:1/0", namespace=redis_namespace, socket_timeout=0.5)
    with pytest.raises(redis.RedisError):
        enqueue_many(down, [(message(str(uuid.uuid4())), None), (message(str(uuid.uuid4())), None)])
    down.close()


def test_a_message_waiting_on_the_broker_is_in_its_queue_s_waiting_list(broker):
    enqueue_many(broker, [(message(str(uuid.uuid4()), Queue.URGENT.value), None)])

    assert broker.client.llen(waiting_list_key(broker.namespace, Queue.URGENT)) == 1
    assert broker.client.llen(waiting_list_key(broker.namespace, Queue.EMAILS)) == 0


def test_a_fetched_message_waiting_for_a_thread_is_seen_in_the_worker_s_work_queue(
    broker, redis_namespace
):
    # Given a worker of one thread, held by a message, and two more fetched behind it
    release = threading.Event()
    started = threading.Event()

    def hold(job_id: str) -> None:
        started.set()
        release.wait(10)

    dramatiq.actor(hold, actor_name="take", queue_name=Queue.EMAILS.value, broker=broker)
    dramatiq.actor(hold, actor_name="take_urgent", queue_name=Queue.URGENT.value, broker=broker)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        broker.enqueue(message(str(uuid.uuid4())))
        assert started.wait(10)
        urgent = dramatiq.Message(
            queue_name=Queue.URGENT.value, actor_name="take_urgent", args=("x",), kwargs={},
            options={},
        )  # fmt: skip
        broker.enqueue(urgent)

        # Then the worker's work queue shows the urgent message waiting for the thread
        queue = work_queue_of(worker)
        assert queue is not None
        wait_until(lambda: waits_for_a_thread(queue, Queue.URGENT), what="the fetched message")
        assert not waits_for_a_thread(queue, Queue.EMAILS)
    finally:
        release.set()
        worker.stop()
