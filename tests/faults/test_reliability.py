"""Reliability on the real processes: a worker killed or stopped mid-batch, Redis down, SendGrid
failing or throttling, two schedulers at once, priority, the global rate limit, cancellation.

Each test runs release + web (gunicorn) + worker (dramatiq CLI) on a redis-server of its own with
shortened timings (:data:`tests.faults.harness.FAST_PROFILE`). Instead of waiting for
periodiq's minute, the periodic work (relay, reaper) runs on demand: called from the test process,
or as tick messages that worker processes consume. Each test prints its figures: accepted, sent,
lost, duplicates, seconds (``pytest -s`` shows them).
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
import uuid
from collections import Counter

import pytest

from tests.faults.harness import (
    DELIVERY_TIMEOUT,
    PAST_GRACE,
    concurrently,
    delivered,
    figures_for,
    ids_of,
    probe_times,
    requests_for,
    settle,
    wait_for_open_circuit_and_probes,
)
from tests.support.fakes.sendgrid import Reply
from tests.support.waiting import wait_until
from tribe_shared import db
from tribe_shared.contract import Actor, JobStatus, Queue
from tribe_shared.models import NotificationJob, utcnow
from tribe_worker.relay import GRACE


def test_a_worker_killed_mid_batch_loses_no_job_and_duplicates_only_its_crash_window(
    deploy, sendgrid
):
    # Given 1,000 individual email jobs going out through one worker process of 8 threads
    threads = 8
    system = deploy(worker=(1, threads))
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(1000))

    # When the worker is SIGKILLed in the middle of the batch and started again
    sendgrid.wait_for_requests(300, timeout=30)
    system.kill_worker()
    killed_at = time.time()
    received_before_kill = len(sendgrid.requests)
    system.start_worker(1, threads)
    # (Dramatiq would requeue the dead worker's prefetched messages only by chance, minutes
    # later: the reaper's lease and stale-queued re-hand, with the relay, must recover them.)
    done = system.run_periodic_work_until(lambda: system.all_have(job_ids, JobStatus.SENT))

    # Then every job is sent, none lost, and duplicates come only from the crash window
    figures = figures_for(
        "worker SIGKILLed mid-batch",
        system,
        job_ids,
        started,
        received_before_kill=received_before_kill,
        threads=threads,
        reaped=dict(system.reaped),
    )
    assert done, system.statuses(job_ids)
    assert figures.sent == 1000
    assert figures.lost == 0
    assert figures.duplicates <= threads
    # Each email sent twice was first accepted by SendGrid before the worker died: its worker
    # was killed between SendGrid's 202 and recording it, so the reaper rightly sent it again.
    first_accepted = {}
    for r in sorted(sendgrid.requests, key=lambda r: r.received_at):
        for job_id in r.job_ids if r.message_id else ():
            first_accepted.setdefault(job_id, r.received_at)
    twice = [job_id for job_id, n in delivered(sendgrid, job_ids).items() if n > 1]
    assert all(first_accepted[job_id] < killed_at for job_id in twice)


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
    probe_gaps = [b - a for a, b in itertools.pairwise(probe_times(answered_500, opened_at))]
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


def test_two_schedulers_relaying_at_once_hand_over_each_job_once(deploy, sendgrid):
    # Given 600 jobs accepted while the broker was down, and no worker consuming yet
    system = deploy(worker=None)
    started = time.monotonic()
    system.redis_server.stop()
    job_ids = ids_of(system.send_emails(600))
    assert system.statuses(job_ids) == {JobStatus.PENDING: 600}
    system.redis_server.start()

    # When two relays run at the same instant, each on its own database connection
    first, second = concurrently(
        lambda: system.relay(ahead=PAST_GRACE, batch_size=50),
        lambda: system.relay(ahead=PAST_GRACE, batch_size=50),
    )

    # Then every job is on the broker exactly once
    on_broker = Counter(
        job_id
        for message in system.messages_on(Queue.EMAILS)
        for arg in message.args
        for job_id in (arg if isinstance(arg, list) else [arg])
    )
    assert first + second == 600
    assert on_broker == dict.fromkeys(job_ids, 1)

    # And once a worker runs, every email is sent exactly once
    system.start_worker(2, 4)
    done = settle(lambda: system.all_have(job_ids, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)
    figures = figures_for(
        "two relays at once (threads)", system, job_ids, started, relayed=f"{first}+{second}"
    )
    assert done, system.statuses(job_ids)
    assert Counter(sendgrid.job_ids) == dict.fromkeys(job_ids, 1)
    assert (figures.lost, figures.duplicates) == (0, 0)


def test_two_relay_ticks_run_by_worker_processes_at_once_hand_over_each_job_once(deploy, sendgrid):
    # Given 600 jobs accepted while the broker was down, old enough for the relay to take
    system = deploy(worker=None)
    started = time.monotonic()
    system.redis_server.stop()
    job_ids = ids_of(system.send_emails(600))
    system.redis_server.start()
    newest = max(job.created_at for job in system.jobs(job_ids))
    wait_until(
        lambda: utcnow() - newest > GRACE,
        timeout=GRACE.total_seconds() + 5,
        what="the jobs to pass the relay's grace period",
    )

    # When two scheduler processes each send the minute's relay tick, and two worker processes
    # (two threads each) consume the maintenance queue only, so no email is sent yet
    system.start_worker(2, 2, queues=[Queue.MAINTENANCE.value])
    system.send_tick(Actor.RELAY_PENDING_JOBS)
    system.send_tick(Actor.RELAY_PENDING_JOBS)
    wait_until(
        lambda: system.all_have(job_ids, JobStatus.QUEUED),
        timeout=30,
        what=f"the relay ticks to hand the jobs over\n{system.worker_log()}",
    )

    # Then every job is on the broker exactly once
    on_broker = Counter(
        job_id
        for message in system.messages_on(Queue.EMAILS)
        for arg in message.args
        for job_id in (arg if isinstance(arg, list) else [arg])
    )
    relay_passes = [int(n) for n in re.findall(r"relayed (\d+) pending job", system.worker_log())]
    assert on_broker == dict.fromkeys(job_ids, 1)
    assert sum(relay_passes) == 600

    # And once a worker sends them, every email is sent exactly once
    assert system.terminate_worker() == 0
    system.start_worker(2, 4)
    done = settle(lambda: system.all_have(job_ids, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)
    figures = figures_for(
        "two relay ticks in worker processes", system, job_ids, started, passes=relay_passes
    )
    assert done, system.statuses(job_ids)
    assert Counter(sendgrid.job_ids) == dict.fromkeys(job_ids, 1)
    assert (figures.lost, figures.duplicates) == (0, 0)


def test_urgent_jobs_overtake_a_backlog_of_normal_ones(deploy, sendgrid):
    # Given a stopped worker, 300 normal jobs queued, then 5 urgent ones
    system = deploy(worker=None)
    started = time.monotonic()
    normal = ids_of(system.send_emails(300))
    urgent = ids_of(system.send_emails(5, priority="urgent"))
    everything = normal + urgent

    # When a worker (1 process, 2 threads) starts on the backlog, SendGrid taking ~10 ms a call
    sendgrid.default = Reply(delay=0.01)
    system.start_worker(1, 2)
    done = settle(lambda: system.all_have(everything, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)

    # Then the urgent ones are delivered before most of the normal ones
    order = [
        job_id
        for r in sorted(sendgrid.requests, key=lambda r: r.received_at)
        for job_id in r.job_ids
    ]
    positions = sorted(order.index(job_id) for job_id in urgent)
    figures = figures_for("priority", system, everything, started, urgent_positions=positions)
    assert done, system.statuses(everything)
    assert (figures.lost, figures.duplicates) == (0, 0)
    assert positions[-1] < 30


def test_two_worker_processes_never_exceed_the_global_send_rate(deploy, sendgrid):
    # Given a limit of 20 emails a second and 100 jobs waiting
    limit = 20
    system = deploy(worker=None, EMAIL_RATE_LIMIT_PER_SECOND=str(limit))
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(100))

    # When two worker processes of four threads each send them
    system.start_worker(2, 4)
    done = settle(lambda: system.all_have(job_ids, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)

    # Then no window of a second (less 50 ms for the jitter between the limiter and the fake)
    # saw more than the limit, and all are sent
    times = sorted(r.received_at for r in sendgrid.requests)
    window = 1.0 - 0.05
    busiest = max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))
    # The shortest time in which limit + 1 requests arrived: a second, or the limit was broken.
    tightest = min(times[i + limit] - times[i] for i in range(len(times) - limit))
    figures = figures_for(
        "global rate limit",
        system,
        job_ids,
        started,
        limit=limit,
        busiest_window=busiest,
        tightest_21_requests=f"{tightest:.3f}s",
    )
    assert done, system.statuses(job_ids)
    assert busiest <= limit
    assert (figures.lost, figures.duplicates) == (0, 0)


def test_a_cancelled_job_whose_message_is_already_queued_is_never_sent(deploy, sendgrid):
    # Given ten jobs on the broker and no worker yet
    system = deploy(worker=None)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(10))
    cancelled, neighbours = job_ids[4], job_ids[:4] + job_ids[5:]

    # When one of them is cancelled in the database (DELETE /api/jobs comes with a later issue)
    with db.connection():
        changed = (
            NotificationJob.update(status=JobStatus.CANCELLED)
            .where(
                NotificationJob.id == uuid.UUID(cancelled),
                NotificationJob.status == JobStatus.QUEUED,
            )
            .execute()
        )
    assert changed == 1
    system.start_worker(1, 2)

    # Then its neighbours are sent, every message is consumed, and it never is
    done = settle(
        lambda: system.all_have(neighbours, JobStatus.SENT) and system.drained(),
        timeout=DELIVERY_TIMEOUT,
    )
    figures = figures_for("cancelled while queued", system, neighbours, started)
    assert done, (system.statuses(job_ids), system.queue_depths())
    assert requests_for(sendgrid, cancelled) == []
    assert system.statuses([cancelled]) == {JobStatus.CANCELLED: 1}
    assert (figures.lost, figures.duplicates) == (0, 0)


@pytest.mark.parametrize("whole_group", [False, True], ids=["main-process", "process-group"])
def test_sigterm_during_load_finishes_or_requeues_everything_the_worker_holds(
    deploy, sendgrid, whole_group
):
    # Given a worker busy with 400 jobs, SendGrid taking ~20 ms a call
    threads = 8
    system = deploy(worker=(1, threads))
    sendgrid.default = Reply(delay=0.02)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(400))

    # When it gets SIGTERM in the middle of the batch: its main process only (``docker stop``),
    # or every process of it at once (Heroku; the main process then forwards a second copy)
    sendgrid.wait_for_requests(100, timeout=30)
    exit_code = system.terminate_worker(whole_group=whole_group)
    statuses_after_stop = system.statuses(job_ids)

    # Then it exits cleanly holding nothing: no job is left mid-delivery ...
    assert exit_code == 0, system.worker_log()
    assert statuses_after_stop[JobStatus.PROCESSING] == 0, statuses_after_stop

    # ... and a new worker sends the rest: what the old one requeued on its way out at once,
    # and the rare message a consumer had fetched but not yet handed to a thread (Dramatiq
    # leaves those to its own slow maintenance) through the reaper's stale-queued re-hand
    system.start_worker(1, threads)
    all_sent = lambda: system.all_have(job_ids, JobStatus.SENT)  # noqa: E731
    done = settle(all_sent, timeout=10)
    needed_the_reaper = 0 if done else system.statuses(job_ids)[JobStatus.QUEUED]
    if not done:
        done = system.run_periodic_work_until(all_sent)
    figures = figures_for(
        f"SIGTERM during load ({'process group' if whole_group else 'main process'})",
        system,
        job_ids,
        started,
        sent_before_stop=statuses_after_stop[JobStatus.SENT],
        needed_the_reaper=needed_the_reaper,
    )
    assert done, system.statuses(job_ids)
    assert (figures.lost, figures.duplicates) == (0, 0)
