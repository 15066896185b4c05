"""A worker thread can see that an urgent message of its own process waits for a thread (a real
Dramatiq worker on a StubBroker): the thread of a normal job held at the rate limit gives way."""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.brokers.stub import StubBroker

from tests.support.waiting import wait_until
from tests.support.workers import running_worker
from tribe_shared.contract import Queue
from tribe_worker.fast_lane import FastLaneWatch


def test_an_urgent_message_waiting_for_a_busy_thread_is_seen_until_a_thread_takes_it():
    # Given a worker of one thread, busy with a normal message that waits (as at the limit)
    broker = StubBroker()
    watch = FastLaneWatch()
    broker.add_middleware(watch)
    held, release, ran = threading.Event(), threading.Event(), []

    @dramatiq.actor(broker=broker, queue_name=Queue.EMAILS.value, priority=10)
    def normal():
        held.set()
        release.wait(timeout=10)

    @dramatiq.actor(broker=broker, queue_name=Queue.URGENT.value, priority=0)
    def urgent():
        ran.append("urgent")

    with running_worker(broker, threads=1):
        normal.send()
        wait_until(held.is_set, what="the normal message to hold the thread")
        assert not watch.waiting()

        # When an urgent message arrives
        urgent.send()

        # Then the thread can see it waiting, until the thread is free and takes it
        wait_until(watch.waiting, what="the urgent message to wait for a thread")
        release.set()
        wait_until(lambda: ran == ["urgent"], what="the urgent message to run")
        assert not watch.waiting()


def test_before_a_worker_boots_nothing_is_waiting():
    assert not FastLaneWatch().waiting()
