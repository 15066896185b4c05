"""Urgent jobs overtake a backlog that the gates made (issue #19): with the global rate limit on,
and after the circuit breaker closes, an urgent job is the next to pass the gate.

Each scenario runs ``PRIORITY_REPETITIONS`` times on one deployment (1 in the suite; 10 for the
figures in ``tests/faults/results/figures.json``, see :mod:`tests.faults.priority`).
"""

from __future__ import annotations

import time

import pytest

from tests.faults.figures import figures_for
from tests.faults.priority import (
    MAX_OVERTAKEN_SHARE,
    REPETITIONS,
    busiest_second,
    overtaken,
    send_urgent_one_by_one,
    sent_times,
    tightest,
    wait_all_sent,
    wait_for_normal_sends,
)
from tests.support.deployment import ids_of
from tests.support.fakes.sendgrid import Reply
from tests.support.limiter_log import LimiterLog, limiter_key
from tests.support.waiting import wait_until
from tribe_shared.circuit import email_circuit_key

#: Two worker processes of eight threads, as the Procfile runs them.
PROCESSES, THREADS = 2, 8
URGENT = 5


@pytest.mark.parametrize(
    ("rate", "backlog", "urgent_after"),
    # 10/s: 160 normal jobs, urgent ones once 20 have gone (140 waiting, ~14 s of work);
    # 50/s: 300, urgent ones once 100 have gone (200 waiting, ~4 s of work).
    [(10, 160, 20), (50, 300, 100)],
    ids=["10-per-second", "50-per-second"],
)
def test_urgent_jobs_overtake_a_backlog_held_at_the_rate_limit(
    deploy, sendgrid, rate, backlog, urgent_after
):
    # Given two worker processes sending at most `rate` emails a second, SendGrid ~10 ms a call
    system = deploy(worker=None, EMAIL_RATE_LIMIT_PER_SECOND=str(rate))
    sendgrid.default = Reply(delay=0.01)
    system.start_worker(PROCESSES, THREADS)
    started = time.monotonic()
    everything, results = [], []
    with LimiterLog(system.broker.client, limiter_key(system.namespace)) as log:
        for _ in range(REPETITIONS):
            # When a backlog of normal jobs is going out at the limit and 5 urgent ones arrive
            normal = ids_of(system.send_emails(backlog))
            wait_for_normal_sends(sendgrid, normal, urgent_after)
            arrivals = send_urgent_one_by_one(system, sendgrid, normal, URGENT)
            urgent = [job_id for job_id, _, _ in arrivals]
            wait_all_sent(system, normal + urgent)
            everything += normal + urgent
            results.append(overtaken(sendgrid, normal, arrivals))

    # Then each urgent job went out before at most 10% of the normal jobs waiting at its
    # arrival, in every repetition, and no second saw more than the limit
    busiest = busiest_second(sendgrid)
    worst = max(o.share for run in results for o in run)
    figures = figures_for(
        f"priority at the rate limit {rate}/s",
        system,
        everything,
        started,
        repetitions=REPETITIONS,
        backlog=backlog,
        urgent_per_repetition=URGENT,
        normal_sent_first=[[o.sent_first for o in run] for run in results],
        normal_waiting_at_arrival=[[o.waiting for o in run] for run in results],
        worst_share=round(worst, 3),
        limit=rate,
        busiest_second_at_the_limiter=log.busiest_window(),
        busiest_second_at_sendgrid=busiest,
        tightest_limit_plus_one_at_sendgrid=f"{tightest(sendgrid, rate):.3f}s",
        limiter_log_longest_gap=f"{log.longest_gap:.3f}s",
    )
    assert (figures.lost, figures.duplicates) == (0, 0)
    assert worst <= MAX_OVERTAKEN_SHARE, figures.extra
    assert_limit_held(log, rate, figures)


def test_urgent_jobs_held_during_an_outage_go_first_once_the_circuit_closes(deploy, sendgrid):
    # Given a limit of 50/s and SendGrid down: the circuit opens
    rate, backlog = 50, 150
    system = deploy(worker=None, EMAIL_RATE_LIMIT_PER_SECOND=str(rate))
    system.start_worker(PROCESSES, THREADS)
    circuit = email_circuit_key(system.namespace)
    started = time.monotonic()
    everything, results = [], []
    with LimiterLog(system.broker.client, limiter_key(system.namespace)) as log:
        for _ in range(REPETITIONS):
            sendgrid.default = Reply(503)
            normal = ids_of(system.send_emails(backlog))
            wait_until(
                lambda: system.broker.client.hget(circuit, "state") == b"open",
                what="the circuit to open",
            )
            # When urgent jobs arrive during the outage and meet the open circuit
            urgent = ids_of(system.send_emails(URGENT, priority="urgent"))
            wait_until(
                lambda held=urgent: _all_held(system, held),
                what="the urgent jobs to be held at the circuit",
            )
            # and SendGrid comes back: the next probe closes the circuit
            recovered = time.time()
            sendgrid.default = Reply(delay=0.01)
            wait_all_sent(system, normal + urgent)
            everything += normal + urgent
            times = sent_times(sendgrid)
            after = sorted(times[j] for j in normal if times[j] >= recovered)
            results.append([sum(1 for t in after if t < times[j]) for j in urgent])

    # Then the urgent jobs went out before at most 10% of the normal backlog
    worst = max(max(run) for run in results)
    figures = figures_for(
        "priority after the circuit closes",
        system,
        everything,
        started,
        repetitions=REPETITIONS,
        backlog=backlog,
        normal_sent_first=results,
        limit=rate,
        busiest_second_at_the_limiter=log.busiest_window(),
        busiest_second_at_sendgrid=busiest_second(sendgrid),
        tightest_limit_plus_one_at_sendgrid=f"{tightest(sendgrid, rate):.3f}s",
        limiter_log_longest_gap=f"{log.longest_gap:.3f}s",
    )
    assert (figures.lost, figures.duplicates) == (0, 0)
    assert worst <= backlog * MAX_OVERTAKEN_SHARE, figures.extra
    assert_limit_held(log, rate, figures)


def assert_limit_held(log: LimiterLog, rate: int, figures) -> None:
    """No window of a second held more than the limit, in the limiter's own log (sampled often
    enough to miss nothing); the fake's figures are reported beside it."""
    assert log.longest_gap < 0.9, "the limiter's log was not sampled often enough"
    assert log.busiest_window() <= rate, figures.extra


def _all_held(system, urgent) -> bool:
    """Every urgent job's message is in the fast lane's delay queue (held at the circuit)."""
    held = system.messages_on("emails_urgent.DQ")
    return {job_id for m in held for job_id in _ids(m.args[0])} >= set(urgent)


def _ids(arg) -> list[str]:
    return arg if isinstance(arg, list) else [arg]
