"""Worker processes dying or stopped: SIGKILLed mid-batch or again and again under load, a poison
job that kills whichever worker process sends it, and SIGTERM in the middle of a batch.

Dramatiq's main process stops the others and exits when one of its worker processes dies; the
test plays the process supervisor (systemd, Heroku, Kubernetes) and starts it again.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.figures import delivered, figures_for, requests_for
from tests.support.deployment import ids_of
from tests.support.fakes.sendgrid import Received, Reply
from tests.support.processes import pid_of_connection
from tests.support.waiting import settle, wait_until
from tribe_shared.contract import JobStatus
from tribe_worker.reaper import MAX_LEASE_LOSSES

#: The Procfile's worker: two processes of eight threads.
PROCFILE_WORKER = (2, 8)


#: How long after a worker's death the fake may still read a request it wrote.
IN_FLIGHT_SECONDS = 1.0


def test_a_worker_sigkilled_five_times_under_1000_jobs_loses_none(deploy, sendgrid):
    # Given 1,000 individual email jobs going out through the Procfile's worker, SendGrid
    # taking ~10 ms a call
    system = deploy(worker=PROCFILE_WORKER)
    sendgrid.default = Reply(delay=0.01)
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(1000))

    # When the whole worker is SIGKILLed five times while it sends, and restarted each time
    in_the_window = set()
    for kill in range(5):
        target = 100 + 150 * kill
        system.run_periodic_work_until(lambda t=target: len(sendgrid.requests) >= t, timeout=60)
        system.kill_worker()
        # (the fake has finished answering what the dead worker had sent)
        wait_until(lambda: sendgrid.in_flight == 0, what="the fake to answer its last requests")
        # Accepted by SendGrid but not yet recorded sent: the crash window of this kill.
        statuses = {str(job.id): job.status for job in system.jobs(job_ids)}
        in_the_window |= {
            job_id for job_id in sendgrid.job_ids if statuses.get(job_id) != JobStatus.SENT
        }
        system.start_worker(*PROCFILE_WORKER)
    killed_at = time.monotonic()

    # Then the reaper's lease and stale-queued re-hand, with the relay, recover every job
    done = system.run_periodic_work_until(lambda: system.all_have(job_ids, JobStatus.SENT))
    counts = delivered(sendgrid, job_ids)
    twice = {job_id for job_id, n in counts.items() if n > 1}
    statuses = system.statuses(job_ids)
    figures = figures_for(
        "worker SIGKILLed 5 times under 1,000 jobs",
        system,
        job_ids,
        started,
        kills=5,
        mid_send_at_kills=len(in_the_window),
        stuck_processing=statuses[JobStatus.PROCESSING],
        recovery_seconds=round(time.monotonic() - killed_at, 2),
        reaped=dict(system.reaped),
    )
    assert done, statuses
    assert figures.lost == 0
    assert statuses[JobStatus.PROCESSING] == 0
    # Every email sent twice was one SendGrid had accepted when a kill struck.
    assert twice <= in_the_window
    assert figures.duplicates <= len(in_the_window)


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
    # (The fake notes a request when its thread has read it: one the worker wrote just before
    # it died can be read a moment after the kill. A second is far more than that takes.)
    assert all(first_accepted[job_id] < killed_at + IN_FLIGHT_SECONDS for job_id in twice)


def test_a_poison_job_that_kills_its_worker_fails_after_three_deliveries(deploy, sendgrid):
    # Given a worker of two processes, and one job whose sending kills the process sending it
    # (the fake SendGrid spots the job id and the test SIGKILLs the process on that connection)
    processes, threads = 2, 4
    system = deploy(worker=(processes, threads))
    sendgrid.default = Reply(delay=0.005)
    poison = system.send_email(templateData={"title": "Poison"})["jobId"]
    kills = []

    def kill_the_sender(request: Received) -> Reply | None:
        if poison not in request.job_ids:
            return None
        pid = pid_of_connection(request.connection, system.worker_processes())
        if pid is not None:
            system.kill_worker_process(pid)
            kills.append(pid)
        return Reply(drop=True)

    sendgrid.intercept = kill_the_sender
    started = time.monotonic()

    # When 300 other jobs arrive behind it, and the supervisor restarts the worker each time
    others = ids_of(system.send_emails(300))

    def settled() -> bool:
        system.restart_worker_if_it_died(processes, threads)
        statuses = system.statuses([poison, *others])
        return statuses[JobStatus.FAILED] == 1 and statuses[JobStatus.SENT] == len(others)

    done = system.run_periodic_work_until(settled, timeout=90)

    # Then the poison job is failed after at most three deliveries, counted in its row, and
    # every other job is sent
    (job,) = system.jobs([poison])
    deliveries = len(requests_for(sendgrid, poison))
    figures = figures_for(
        "poison job kills its worker",
        system,
        others,
        started,
        poison_deliveries=deliveries,
        worker_kills=len(kills),
        lease_losses=job.lease_losses,
        attempts=job.attempts,
        poison_status=job.status,
    )
    assert done, (job.status, system.statuses(others))
    assert job.status == JobStatus.FAILED
    assert deliveries <= MAX_LEASE_LOSSES
    assert job.lease_losses == MAX_LEASE_LOSSES
    assert "died" in job.failure_reason
    assert figures.lost == 0


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
