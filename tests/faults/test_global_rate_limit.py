"""The global send rate, held across worker processes: no window of a second sees more calls
to SendGrid than ``EMAIL_RATE_LIMIT_PER_SECOND``."""

from __future__ import annotations

import bisect
import time

from tests.faults.figures import figures_for
from tests.support.deployment import DELIVERY_TIMEOUT, ids_of
from tests.support.limiter_log import LimiterLog, limiter_key
from tests.support.waiting import settle
from tribe_shared.contract import JobStatus

#: How much later than the limiter's grant a call may reach the fake (see the test).
JITTER_SECONDS = 0.25


def test_two_worker_processes_never_exceed_the_global_send_rate(deploy, sendgrid):
    # Given a limit of 20 emails a second and 100 jobs waiting
    limit = 20
    system = deploy(worker=None, EMAIL_RATE_LIMIT_PER_SECOND=str(limit))
    started = time.monotonic()
    job_ids = ids_of(system.send_emails(100))

    # When two worker processes of four threads each send them
    with LimiterLog(system.broker.client, limiter_key(system.namespace)) as log:
        system.start_worker(2, 4)
        done = settle(lambda: system.all_have(job_ids, JobStatus.SENT), timeout=DELIVERY_TIMEOUT)

    # Then no window of a second at the limiter (its own log of the calls it let through) saw
    # more than the limit, and all are sent. At the fake, a call arrives some time after the
    # limiter let it go: on a loaded 2-core machine a call can lag the next by a scheduler's
    # slice or more, so the fake's view allows 250 ms of such jitter (a limiter granting half as
    # much again as the limit would still break it).
    times = sorted(r.received_at for r in sendgrid.requests)
    window = 1.0 - JITTER_SECONDS
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
        busiest_second_at_the_limiter=log.busiest_window(),
    )
    assert done, system.statuses(job_ids)
    assert log.longest_gap < 0.9 and log.busiest_window() <= limit
    assert busiest <= limit
    assert (figures.lost, figures.duplicates) == (0, 0)
