"""Worker processes dying: SIGKILLed again and again under load, and a poison job that kills
whichever worker process sends it.

Dramatiq's main process stops the others and exits when one of its worker processes dies; the
test plays the process supervisor (systemd, Heroku, Kubernetes) and starts it again.
"""

from __future__ import annotations

import time

from tests.faults.harness import delivered, figures_for, ids_of, pid_of_connection, requests_for
from tests.support.fakes.sendgrid import Received, Reply
from tests.support.waiting import wait_until
from tribe_shared.contract import JobStatus
from tribe_worker.reaper import MAX_LEASE_LOSSES

#: The Procfile's worker: two processes of eight threads.
PROCFILE_WORKER = (2, 8)


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
