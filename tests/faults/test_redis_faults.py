"""Redis failing under a running deployment: down while the API accepts jobs (with workers
sending, or none yet), or flushed with jobs queued."""

from __future__ import annotations

import math
import time
from collections import Counter

from tests.faults.figures import figures_for
from tests.support.deployment import DELIVERY_TIMEOUT, PAST_GRACE, ids_of
from tests.support.fakes.sendgrid import Reply
from tests.support.waiting import settle, wait_until
from tribe_shared.contract import JobStatus

#: The outage, shortened from a minute: long enough for every process to notice it.
REDIS_OUTAGE_SECONDS = 6.0
#: The issue's bound on accepting a job while Redis is down: a measured latency under a real
#: outage, kept because it is the promise. The p99 is milliseconds (tests/faults/results/: 7 ms),
#: so the bound is generous on any machine; an accept that waited on the dead broker would take
#: its connect timeout.
ACCEPT_P99_BOUND = 1.0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def test_redis_down_the_api_keeps_accepting_fast_and_everything_goes_out_once_it_returns(
    deploy, sendgrid
):
    # Given a running deployment whose redis-server goes down
    system = deploy(worker=(2, 4))
    started = time.monotonic()
    system.redis_server.stop()
    down_at = time.monotonic()

    # When the API is asked to send 200 emails during the outage
    latencies, accepted = [], []
    for i in range(200):
        sent_at = time.perf_counter()
        accepted.append(
            system.send_email(to=f"family{i}@example.com", templateData={"title": f"Down {i}"})
        )
        latencies.append(time.perf_counter() - sent_at)
    job_ids = [a["jobId"] for a in accepted]

    # Then each answered 202 "pending", fast, and the jobs wait in the database
    assert {a["status"] for a in accepted} == {JobStatus.PENDING}
    assert system.statuses(job_ids) == {JobStatus.PENDING: 200}
    # (the outage lasts its set length: the processes must live through it, not just a blip)
    time.sleep(max(0.0, REDIS_OUTAGE_SECONDS - (time.monotonic() - down_at)))
    assert system.worker_running(), system.worker_log()

    # When Redis comes back, the relay hands them over and the same workers send them
    system.redis_server.start()
    back_at = time.monotonic()
    done = system.run_periodic_work_until(lambda: system.all_have(job_ids, JobStatus.SENT))

    # Then every one is sent exactly once
    figures = figures_for(
        "Redis down while accepting and sending",
        system,
        job_ids,
        started,
        outage_seconds=round(back_at - down_at, 2),
        accept_p99_ms=round(p99(latencies) * 1000, 1),
        accept_max_ms=round(max(latencies) * 1000, 1),
        recovery_seconds=round(time.monotonic() - back_at, 2),
    )
    assert done, system.statuses(job_ids)
    assert p99(latencies) < ACCEPT_P99_BOUND
    assert Counter(sendgrid.job_ids) == dict.fromkeys(job_ids, 1)
    assert (figures.lost, figures.duplicates) == (0, 0)
    assert system.worker_running(), "the workers carried on once Redis was back"


def test_jobs_accepted_while_redis_is_down_are_all_sent_exactly_once_after_it_returns(
    deploy, sendgrid
):
    # Given the deployment's own redis-server is stopped
    system = deploy(worker=(1, 4))
    started = time.monotonic()
    system.redis_server.stop()

    # When the API accepts 200 jobs
    accepted = [
        system.send_email(to=f"family{i}@example.com", templateData={"title": f"Outage {i}"})
        for i in range(200)
    ]

    # Then all are 202 "pending", and once Redis is back the relay hands them over
    assert {a["status"] for a in accepted} == {JobStatus.PENDING}
    job_ids = [a["jobId"] for a in accepted]
    assert system.statuses(job_ids) == {JobStatus.PENDING: 200}
    system.redis_server.start()
    relayed = system.relay(ahead=PAST_GRACE)
    done = settle(lambda: system.all_have(job_ids, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)

    # And every one of them is sent exactly once
    figures = figures_for("Redis down while accepting", system, job_ids, started, relayed=relayed)
    assert relayed == 200
    assert done, system.statuses(job_ids)
    assert Counter(sendgrid.job_ids) == dict.fromkeys(job_ids, 1)
    assert (figures.lost, figures.duplicates) == (0, 0)


def test_redis_flushed_with_500_jobs_queued_loses_none(deploy, sendgrid):
    # Given 500 jobs queued behind a slow worker (one process, two threads, ~20 ms a call)
    system = deploy(worker=(1, 2))
    sendgrid.default = Reply(delay=0.02)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(550))
    wait_until(lambda: len(sendgrid.requests) >= 50, timeout=30, what="50 emails out")
    queued_at_flush = system.statuses(job_ids)[JobStatus.QUEUED]

    # When Redis loses everything (FLUSHALL: a failover to an empty replica, an operator)
    system.broker.client.flushall()
    flushed_at = time.monotonic()

    # Then the reaper finds the jobs whose messages are gone and the relay hands them over again
    done = system.run_periodic_work_until(lambda: system.all_have(job_ids, JobStatus.SENT))
    figures = figures_for(
        "Redis flushed with 500 jobs queued",
        system,
        job_ids,
        started,
        queued_at_flush=queued_at_flush,
        recovery_seconds=round(time.monotonic() - flushed_at, 2),
        reaped=dict(system.reaped),
    )
    assert queued_at_flush >= 450
    assert done, system.statuses(job_ids)
    assert figures.lost == 0
    # At most the jobs the worker held while their messages vanished went out twice.
    assert figures.duplicates <= 2
    # Each lost message was replaced once: a job re-handed and still waiting in the backlog
    # it rejoined keeps its new message.
    assert system.reaped["requeued"] <= queued_at_flush
