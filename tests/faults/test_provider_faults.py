"""SendGrid misbehaving at the wire: hanging without an answer, resetting connections.

(500s, 429 with a reset time and a 400 are in ``test_reliability.py``.)
"""

from __future__ import annotations

import time
import uuid

from tests.fakes.sendgrid import Reply
from tests.faults.harness import figures_for, ids_of, requests_for
from tests.waiting import wait_until
from tribe_shared import db
from tribe_shared.contract import DeliveryStatus, JobStatus
from tribe_shared.models import DeliveryLog
from tribe_worker.emails.sendgrid import DEFAULT_TIMEOUT

#: The issue's bound on a SendGrid call, with a margin for the worker's own bookkeeping.
TIMEOUT_BOUND = 10.0
MARGIN = 0.5


def transient_logs(job_ids) -> list[DeliveryLog]:
    with db.connection():
        return list(
            DeliveryLog.select().where(
                DeliveryLog.job.in_([uuid.UUID(j) for j in job_ids]),
                DeliveryLog.status == DeliveryStatus.TRANSIENT_FAILURE,
            )
        )


def test_a_hanging_provider_times_out_within_10_s_as_a_transient_failure(deploy, sendgrid):
    # Given SendGrid accepts connections and requests but never answers, and a circuit that
    # opens after two failures
    processes, threads = 1, 4
    system = deploy(worker=(processes, threads), CIRCUIT_FAILURE_THRESHOLD="2")
    sendgrid.default = Reply(hang=True)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(12))

    # When every worker thread's call hangs, each gives up at the client timeout, and the
    # failures open the circuit: the threads are free again and no new call goes to the hang
    wait_until(
        lambda: system.redis_health()["circuit_breaker"]["state"] == "open",
        timeout=DEFAULT_TIMEOUT + 15,
        what="the timeouts to open the circuit",
    )
    hung_before_open = len(sendgrid.requests)
    # (the calls held with those that opened it time out a moment later: let them)
    wait_until(
        lambda: len(transient_logs(job_ids)) >= hung_before_open,
        timeout=5,
        what="every call held before the circuit opened to time out",
    )
    sendgrid.default = Reply()
    sendgrid.release()
    recovered_at = time.monotonic()

    # Then every job is sent once SendGrid answers again; none failed
    done = system.run_periodic_work_until(
        lambda: system.all_have(job_ids, JobStatus.SENT) and system.drained()
    )
    # (a probe held when the fake let go of its held requests was cut, not timed out)
    failures = transient_logs(job_ids)
    timeouts = [log for log in failures if "timed out" in log.error.lower()]
    longest = max(log.duration_ms for log in timeouts) / 1000 if timeouts else 0.0
    figures = figures_for(
        "provider hangs",
        system,
        job_ids,
        started,
        timed_out_calls=len(timeouts),
        other_transient_failures=len(failures) - len(timeouts),
        longest_call_seconds=round(longest, 3),
        calls_held_by_the_hang=hung_before_open,
        drained_seconds_after_recovery=round(time.monotonic() - recovered_at, 2),
    )
    assert done, system.statuses(job_ids)
    assert figures.lost == 0
    # Each held call ended at the client's timeout, no later, as a transient failure
    assert len(timeouts) >= hung_before_open, [log.error for log in failures]
    assert longest <= TIMEOUT_BOUND + MARGIN
    # ... and the circuit kept the hang from taking every thread again and again: one call per
    # thread, and at most a retry for each failure that opened it
    assert hung_before_open <= processes * threads + system.settings.circuit_failure_threshold
    assert max(job.retry_count for job in system.jobs(job_ids)) <= system.settings.max_retries


def test_connections_reset_mid_request_are_retried_and_nothing_is_sent_twice(deploy, sendgrid):
    # Given SendGrid drops the connection of the next five requests without answering
    system = deploy(worker=(1, 2))
    sendgrid.script(*[Reply(drop=True)] * 5)
    started = time.monotonic()

    # When 30 jobs go out
    job_ids = ids_of(system.send_emails(30))
    done = system.run_periodic_work_until(lambda: system.all_have(job_ids, JobStatus.SENT))

    # Then each reset was a transient failure, retried, and every job sent exactly once
    dropped = [r for r in sendgrid.requests if r.status is None]
    figures = figures_for(
        "provider resets connections",
        system,
        job_ids,
        started,
        connections_reset=len(dropped),
        transient_failures=len(transient_logs(job_ids)),
    )
    assert done, system.statuses(job_ids)
    assert len(dropped) == 5
    assert len(transient_logs(job_ids)) == 5
    for request in dropped:
        (job_id,) = request.job_ids
        assert [r.status for r in requests_for(sendgrid, job_id)][-1] == 202
    assert (figures.lost, figures.duplicates) == (0, 0)
