"""Recovery with the default settings, measured: the real scheduler (periodiq, a tick a minute),
the 10-minute lease, the 10-second relay poll, the 30-second circuit reset.

Minutes long, so skipped unless asked for: ``FAULTS_DEFAULTS=1 ./tribe test -m slow -s``. Each
run writes its figures to ``tests/faults/results/defaults.json``, which ``docs/RELIABILITY.md``
cites. The test plays the process supervisor: a process that exits is started again.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.faults.figures import RECORDED_FIGURES_FILE, figures_for, record_figures
from tests.support.deployment import DEFAULT_PROFILE, ids_of
from tests.support.fakes.sendgrid import Reply
from tests.support.waiting import settle
from tribe_shared.contract import JobStatus
from tribe_shared.settings import DEFAULT_JOB_LEASE_SECONDS

DEFAULTS_FILE = RECORDED_FIGURES_FILE.with_name("defaults.json")
#: The issue's Redis outage, unshortened.
REDIS_OUTAGE_SECONDS = 60.0
PROCFILE_WORKER = (2, 8)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FAULTS_DEFAULTS") != "1",
        reason="minutes long: FAULTS_DEFAULTS=1 runs it (see docs/RELIABILITY.md)",
    ),
]


class Supervisor:
    """Restarts the worker and the scheduler when they exit, and counts the restarts."""

    def __init__(self, system):
        self.system = system
        self.scheduler = system.start_scheduler("scheduler-1")
        self.restarts = 0

    def check(self) -> None:
        if self.system.restart_worker_if_it_died(*PROCFILE_WORKER):
            self.restarts += 1
        if self.scheduler.poll() is not None:
            self.restarts += 1
            self.scheduler = self.system.start_scheduler(f"scheduler-{self.restarts + 1}")


def wait_supervised(supervisor: Supervisor, done, timeout: float) -> bool:
    def check():
        supervisor.check()
        return done()

    return settle(check, timeout=timeout, interval=1.0)


@pytest.mark.parametrize("scenario", ["worker-sigkilled", "redis-down-60s"])
def test_recovery_with_the_default_settings(deploy, sendgrid, scenario):
    system = deploy(worker=PROCFILE_WORKER, profile=DEFAULT_PROFILE)
    supervisor = Supervisor(system)
    sendgrid.default = Reply(delay=0.01)
    started = time.monotonic()

    if scenario == "worker-sigkilled":
        # 1,000 jobs, the whole worker SIGKILLed after 300 calls and restarted at once: what it
        # held waits for the lease (10 minutes) and the scheduler's next reaper tick
        job_ids = ids_of(system.send_emails(1000))
        sendgrid.wait_for_requests(300, timeout=60)
        system.kill_worker()
        system.start_worker(*PROCFILE_WORKER)
        fault_over = time.monotonic()
        timeout = DEFAULT_JOB_LEASE_SECONDS + 300
    else:
        # Redis down for a minute while 200 emails are accepted, then back: the scheduler's
        # relay hands them over
        system.redis_server.stop()
        down_at = time.monotonic()
        job_ids = [
            system.send_email(to=f"family{i}@example.com", templateData={"title": f"Down {i}"})[
                "jobId"
            ]
            for i in range(200)
        ]
        time.sleep(max(0.0, REDIS_OUTAGE_SECONDS - (time.monotonic() - down_at)))
        system.redis_server.start()
        fault_over = time.monotonic()
        timeout = 300

    done = wait_supervised(
        supervisor, lambda: system.all_have(job_ids, JobStatus.SENT), timeout=timeout
    )
    figures = figures_for(
        f"defaults: {scenario}",
        system,
        job_ids,
        started,
        recovery_seconds=round(time.monotonic() - fault_over, 1),
        supervisor_restarts=supervisor.restarts,
        stuck_processing=system.statuses(job_ids)[JobStatus.PROCESSING],
    )
    record_figures(DEFAULTS_FILE, figures)
    assert done, system.statuses(job_ids)
    assert figures.lost == 0
