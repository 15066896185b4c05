"""Waiting without spending a retry: an actor that raises ``Deferred`` has its message put back
after the delay with its retry count unchanged, while any other failure is retried (and
counted) by Dramatiq's own rules. A real worker on a StubBroker, no database."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from tribe_worker.deferrals import Deferrals, Deferred, use_deferrals

#: Never spent on a deferral: every test allows no retry at all.
MAX_RETRIES = 0


class Script:
    """What an actor does on each of its runs (raise something, or return), and the options
    of each message it ran."""

    def __init__(self, *outcomes):
        self._outcomes = list(outcomes)
        self.retries_seen: list[int] = []

    def __call__(self, job_id: str) -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        self.retries_seen.append(message.options.get("retries", 0))
        outcome = self._outcomes.pop(0) if self._outcomes else None
        if outcome is not None:
            raise outcome


@pytest.fixture
def broker():
    broker = StubBroker(fail_fast_default=False)
    broker.add_middleware(dramatiq.middleware.CurrentMessage())
    use_deferrals(broker, max_retries=MAX_RETRIES, outage_delay_ms=lambda: 1)
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


def run(broker, script: Script) -> None:
    actor = dramatiq.actor(script, actor_name="deliver", broker=broker, min_backoff=1)
    actor.send("job-1")
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        broker.join(actor.queue_name, timeout=10_000)
        worker.join()
    finally:
        worker.stop()


def test_deferrals_take_the_place_of_dramatiqs_retries_middleware(broker):
    kinds = [type(m) for m in broker.middleware]
    assert Deferrals in kinds and Retries not in kinds


def test_a_deferred_message_comes_back_with_its_retries_unspent(broker):
    # Given an actor allowed no retry, deferred twice (a closed gate, an outage) then done
    script = Script(Deferred("rate_limit", delay_ms=5), Deferred("database unreachable"), None)

    run(broker, script)

    # Then it ran three times, each time with no retry spent, and nothing was dead-lettered
    assert script.retries_seen == [0, 0, 0]
    assert broker.dead_letters == []


def test_any_other_failure_is_retried_by_dramatiqs_rules(broker):
    # Given an actor allowed no retry that fails with an ordinary error
    script = Script(RuntimeError("provider down"))

    run(broker, script)

    # Then its one failure spent the budget: it ran once and was dead-lettered
    assert script.retries_seen == [0]
    assert len(broker.dead_letters) == 1


def test_a_retry_the_actor_asks_for_is_counted(broker):
    # Given an actor allowed one retry, which asks for it and then succeeds
    for middleware in broker.middleware:
        if isinstance(middleware, Deferrals):
            middleware.max_retries = 1
    script = Script(dramatiq.Retry(delay=1), None)

    run(broker, script)

    assert script.retries_seen == [0, 1]
    assert broker.dead_letters == []
