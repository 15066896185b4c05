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
        busiest_second_at_the_limiter=log.busiest_window(),
    )
    assert done, system.statuses(job_ids)
    assert log.longest_gap < 0.9 and log.busiest_window() <= limit
    assert busiest <= limit
    assert (figures.lost, figures.duplicates) == (0, 0)
