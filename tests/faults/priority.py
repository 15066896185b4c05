"""Measuring priority at the gates: how many normal jobs went out between an urgent job's arrival
and its send, and the busiest second of the whole run (issue #19).

Every figure is read from the fake SendGrid's record (``received_at``, one clock with the test
process's), so it is what the provider saw.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tests.support.deployment import DELIVERY_TIMEOUT, Deployment, ids_of
from tests.support.fakes.sendgrid import FakeSendGrid
from tests.support.waiting import wait_until
from tribe_shared.contract import JobStatus

#: Repetitions of each scenario: 1 in the suite, 10 for the recorded figures
#: (``PRIORITY_REPETITIONS=10 FAULTS_RECORD=1 ./tribe test
#: tests/faults/test_priority_at_the_gates.py``: about 3 minutes at 10/s, too long for CI).
REPETITIONS = int(os.environ.get("PRIORITY_REPETITIONS", "1"))
#: An urgent job may see at most this share of the normal jobs waiting at its arrival go first.
MAX_OVERTAKEN_SHARE = 0.10
#: The limiter and the fake stamp times on different threads: a window this much under a second.
JITTER = 0.05


@dataclass(frozen=True)
class Overtaken:
    """One urgent job: the normal jobs waiting when it arrived, and how many went out first."""

    waiting: int
    sent_first: int

    @property
    def share(self) -> float:
        return self.sent_first / self.waiting if self.waiting else 0.0


def sent_times(sendgrid: FakeSendGrid) -> dict[str, float]:
    """When the fake accepted each job (its first 202)."""
    times: dict[str, float] = {}
    for request in list(sendgrid.requests):
        if request.message_id:
            for job_id in request.job_ids:
                times.setdefault(job_id, request.received_at)
    return times


def sent_count(sendgrid: FakeSendGrid, job_ids: set[str]) -> int:
    return sum(1 for job_id in sendgrid.job_ids if job_id in job_ids)


def send_urgent_one_by_one(
    system: Deployment, sendgrid: FakeSendGrid, normal: Sequence[str], count: int
) -> list[tuple[str, float, int]]:
    """Accept ``count`` urgent emails one request each; for each: (job id, when it was sent to
    the API, how many normal jobs were still waiting then)."""
    wanted = set(normal)
    arrivals = []
    for _ in range(count):
        waiting = len(normal) - sent_count(sendgrid, wanted)
        arrived = time.time()
        (job_id,) = ids_of(system.send_emails(1, priority="urgent"))
        arrivals.append((job_id, arrived, waiting))
    return arrivals


def overtaken(
    sendgrid: FakeSendGrid, normal: Sequence[str], arrivals: Sequence[tuple[str, float, int]]
) -> list[Overtaken]:
    """For each urgent arrival: the normal jobs sent after it arrived and before it was sent."""
    times = sent_times(sendgrid)
    normal_times = sorted(times[job_id] for job_id in normal if job_id in times)
    result = []
    for job_id, arrived, waiting in arrivals:
        sent = times[job_id]
        first = bisect.bisect_right(normal_times, arrived)
        result.append(Overtaken(waiting, bisect.bisect_left(normal_times, sent) - first))
    return result


def busiest_second(sendgrid: FakeSendGrid) -> int:
    """The most provider calls the fake received in any window of a second (less the jitter)."""
    times = sorted(r.received_at for r in sendgrid.requests)
    window = 1.0 - JITTER
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def tightest(sendgrid: FakeSendGrid, limit: int) -> float:
    """The shortest time in which ``limit + 1`` requests reached the fake: a second, or the
    limit was broken (less the jitter between the limiter's clock and the fake's)."""
    times = sorted(r.received_at for r in sendgrid.requests)
    return min((times[i + limit] - times[i] for i in range(len(times) - limit)), default=1.0)


def wait_for_normal_sends(sendgrid: FakeSendGrid, normal: Sequence[str], count: int) -> None:
    """Wait until ``count`` of ``normal`` have been accepted by the fake."""
    wanted = set(normal)
    wait_until(
        lambda: sent_count(sendgrid, wanted) >= count,
        timeout=DELIVERY_TIMEOUT,
        # Not more often: the fake's handler threads share this process, and a busy test
        # process delays the times they stamp.
        interval=0.05,
        what=f"{count} normal jobs to be sent",
    )


def wait_all_sent(system: Deployment, job_ids: Sequence[str]) -> None:
    wait_until(
        lambda: system.all_have(job_ids, JobStatus.SENT),
        timeout=DELIVERY_TIMEOUT * 2,
        interval=0.1,
        what="every job to be sent",
    )
