"""Urgent jobs overtake a backlog of normal ones on a real worker: the fast lane's queue and
the higher-priority actors that consume it."""

from __future__ import annotations

import time

from tests.faults.figures import figures_for
from tests.support.deployment import DELIVERY_TIMEOUT, ids_of
from tests.support.fakes.sendgrid import Reply
from tests.support.waiting import settle
from tribe_shared.contract import JobStatus


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
