"""SendGrid misbehaving: answering 500 (the circuit opens), 429 with a reset time, 400, hanging
without an answer, resetting connections, and refusing our API key (401): sending pauses for
every worker until it is fixed.
"""

from __future__ import annotations

import itertools
import time
import uuid

from tests.faults.figures import figures_for, requests_for
from tests.support.deployment import DELIVERY_TIMEOUT, ids_of
from tests.support.fakes.sendgrid import Reply
from tests.support.prometheus import scrape, total
from tests.support.waiting import settle, wait_until
from tribe_shared import db
from tribe_shared.contract import DeliveryStatus, JobStatus
from tribe_shared.models import DeliveryLog
from tribe_worker.emails.sendgrid import DEFAULT_TIMEOUT

#: The issue's bound on a SendGrid call (the client's timeout, ``DEFAULT_TIMEOUT``), read from
#: the durations the worker records: a measured latency, kept because it is the promise. The
#: margin is for the worker's bookkeeping around the call, which takes microseconds; a call
#: without a timeout would be held for as long as the hang lasts.
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


#: A probe can come no sooner than this share of the reset interval after the circuit opened
#: (less for timers); a call that reached the provider sooner was already on its way.
EARLIEST_PROBE = 0.95


def wait_for_open_circuit_and_probes(system, sendgrid, probes: int = 3) -> float:
    """Wait until the health payload shows the circuit open, then until ``probes`` calls have
    reached the provider since (past those already on their way); return when it opened, as
    the breaker recorded it."""
    circuit = wait_until(
        lambda: (state := system.redis_health()["circuit_breaker"])["state"] == "open" and state,
        timeout=15,
        what="the circuit to open",
    )
    opened_at = circuit["opened_at"]
    reset = system.settings.circuit_reset_seconds
    wait_until(
        lambda: len(probe_times(sendgrid.requests, opened_at, reset)) >= probes,
        timeout=15,
        what=f"{probes} probes while the circuit is open",
    )
    return opened_at


def probe_times(requests, opened_at: float, reset_seconds: float) -> list[float]:
    """When the calls made once the circuit had opened reached the provider, in order: those
    that came after the first probe could (the calls already on their way came sooner)."""
    earliest = opened_at + EARLIEST_PROBE * reset_seconds
    return sorted(r.received_at for r in requests if r.received_at > earliest)


def test_a_failing_provider_opens_the_circuit_and_jobs_wait_without_burning_their_retries(
    deploy, sendgrid
):
    # Given SendGrid answers 500 to everything, and two worker processes of four threads
    processes, threads = 2, 4
    system = deploy(worker=(processes, threads))
    settings = system.settings
    sendgrid.default = Reply(500, body={"errors": [{"message": "Internal Server Error"}]})
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(40))

    # When the workers keep failing, the circuit opens, visibly in the health payload, and
    # stays open through three failed half-open probes, one per reset period
    opened_at = wait_for_open_circuit_and_probes(system, sendgrid)
    sendgrid.default = Reply()
    recovered_at = time.monotonic()

    # Then once SendGrid answers 202 again every job is sent, none failed
    done = settle(
        lambda: system.all_have(job_ids, JobStatus.SENT) and system.drained(),
        timeout=DELIVERY_TIMEOUT,
    )
    jobs = system.jobs(job_ids)
    retries = [job.retry_count for job in jobs]
    answered_500 = [r for r in sendgrid.requests if r.status == 500]
    # The probes: calls after the circuit opened, less those already on their way then.
    probe_gaps = [
        b - a
        for a, b in itertools.pairwise(
            probe_times(answered_500, opened_at, settings.circuit_reset_seconds)
        )
    ]
    figures = figures_for(
        "provider 500s, circuit breaker",
        system,
        job_ids,
        started,
        answered_500=len(answered_500),
        total_retries=sum(retries),
        max_retry_count=max(retries),
        shortest_gap_between_probes=f"{min(probe_gaps):.3f}s" if probe_gaps else "-",
        drained_seconds_after_recovery=round(time.monotonic() - recovered_at, 2),
    )
    assert done, system.statuses(job_ids)
    assert not [job for job in jobs if job.status == JobStatus.FAILED]
    assert (figures.lost, figures.duplicates) == (0, 0)
    # Only calls that reached the provider counted as retries: the failures before the
    # circuit opened (at most one per thread beyond the threshold) and one per probe.
    assert sum(retries) == len(answered_500)
    probes = sum(1 for r in answered_500 if r.received_at > opened_at)
    assert len(answered_500) <= settings.circuit_failure_threshold + processes * threads + probes
    # At most one probe per half-open interval, across both processes (less 5% for timers).
    assert all(gap >= 0.95 * settings.circuit_reset_seconds for gap in probe_gaps), probe_gaps
    assert len(answered_500) < len(job_ids), "most jobs never called the failing provider"
    assert max(retries) <= settings.max_retries
    assert system.redis_health()["circuit_breaker"]["state"] == "closed"


def test_a_429_reset_time_holds_every_worker_and_a_400_fails_its_job_at_once(deploy, sendgrid):
    # Given two worker processes, and SendGrid throttling the first call until ~2-3 s from now
    system = deploy(worker=(2, 2))
    started = time.monotonic()
    reset_at = int(time.time()) + 3  # X-RateLimit-Reset is in whole epoch seconds
    sendgrid.script(
        Reply(
            429,
            headers={"X-RateLimit-Reset": str(reset_at)},
            body={"errors": [{"message": "too many requests"}]},
        )
    )
    throttled = system.send_email(templateData={"title": "First"})["jobId"]
    sendgrid.wait_for_requests(1)
    wait_until(
        lambda: system.redis_health()["circuit_breaker"]["state"] == "open",
        timeout=5,
        what="the 429 to hold the circuit",
    )

    # When more jobs arrive for both worker processes
    job_ids = ids_of(system.send_emails(20))
    everything = [throttled, *job_ids]
    done = settle(lambda: system.all_have(everything, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)

    # Then no request reached SendGrid before the reset time, from any process; all are sent
    after_429 = sorted(r.received_at for r in sendgrid.requests[1:])
    figures = figures_for(
        "429 with reset",
        system,
        everything,
        started,
        first_request_after_429=f"{after_429[0] - reset_at:+.3f}s from reset" if after_429 else "-",
    )
    assert done, system.statuses(everything)
    assert after_429 and after_429[0] >= reset_at
    assert [r.status for r in requests_for(sendgrid, throttled)] == [429, 202]
    assert (figures.lost, figures.duplicates) == (0, 0)

    # When SendGrid rejects the next email as invalid (400)
    sendgrid.script(Reply(400, body={"errors": [{"message": "Does not contain a valid address."}]}))
    rejected = system.send_email(to="bounce@example.com", templateData={"title": "x"})["jobId"]
    wait_until(
        lambda: system.all_have([rejected], JobStatus.FAILED),
        timeout=15,
        what="the rejected job to fail",
    )
    wait_until(system.drained, timeout=15, what="the queues to drain")

    # Then its job failed at once: one request, no retry, the reason kept
    (job,) = system.jobs([rejected])
    assert [r.status for r in requests_for(sendgrid, rejected)] == [400]
    assert job.retry_count == 0
    assert "400" in job.failure_reason


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
    # (the calls held with those that opened it time out later: let them. A thread freed by the
    # first timeout can start one more call before the second opens the circuit, and that call
    # is held for a whole client timeout from then.)
    wait_until(
        lambda: len(transient_logs(job_ids)) >= hung_before_open,
        timeout=DEFAULT_TIMEOUT + 5,
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


def test_a_refused_api_key_pauses_every_worker_without_a_retry_storm_or_a_lost_job(
    deploy, sendgrid
):
    # Given SendGrid refuses our key (401), and two worker processes of four threads
    processes, threads = 2, 4
    system = deploy(worker=(processes, threads))
    settings = system.settings
    sendgrid.default = Reply(401, body={"errors": [{"message": "authorization grant is invalid"}]})
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(40))

    # When the workers meet the refusal, sending pauses for all of them: the circuit opens
    opened_at = wait_for_open_circuit_and_probes(system, sendgrid)
    # ... and the alerting metric counts the refusals
    refused = total(scrape(system.metrics_url), "tribe_provider_calls_total", outcome="refused")
    # Then, the key fixed, every job goes out
    sendgrid.default = Reply()
    recovered_at = time.monotonic()
    done = settle(
        lambda: system.all_have(job_ids, JobStatus.SENT) and system.drained(),
        timeout=DELIVERY_TIMEOUT,
    )
    jobs = system.jobs(job_ids)
    answered_401 = [r for r in sendgrid.requests if r.status == 401]
    probes = probe_times(answered_401, opened_at, settings.circuit_reset_seconds)
    probe_gaps = [b - a for a, b in itertools.pairwise(probes)]
    figures = figures_for(
        "provider refuses the API key (401)",
        system,
        job_ids,
        started,
        answered_401=len(answered_401),
        refused_metric=refused,
        total_retries=sum(job.retry_count for job in jobs),
        shortest_gap_between_probes=f"{min(probe_gaps):.3f}s" if probe_gaps else "-",
        drained_seconds_after_fix=round(time.monotonic() - recovered_at, 2),
    )
    assert done, system.statuses(job_ids)
    assert (figures.lost, figures.duplicates) == (0, 0)
    assert not [job for job in jobs if job.status == JobStatus.FAILED]
    assert sum(job.retry_count for job in jobs) == 0, "a refusal spent no job's retries"
    assert refused >= 3
    # No retry storm: past the calls on their way when the first refusal came, one probe per
    # reset interval across both processes (less 5% for timers)
    assert len(answered_401) <= processes * threads + len(probes)
    assert all(gap >= 0.95 * settings.circuit_reset_seconds for gap in probe_gaps), probe_gaps
