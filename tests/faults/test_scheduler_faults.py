"""Two scheduler processes at once (a deploy that overlaps, a scheduler scaled to two by mistake):
each periodic tick arrives twice, and digests must still go out once per period."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from tests.faults.harness import concurrently, figures_for
from tests.support.digests import digest_jobs, schedule_for
from tests.support.family import family, update_in
from tests.support.waiting import wait_until
from tribe_shared import db
from tribe_shared.contract import Actor, JobStatus
from tribe_shared.models import DigestSchedule, utcnow
from tribe_worker.digest_scan import WINDOW_SETTLE

SCHEDULES = 40
TICKS = 3


def test_two_schedulers_for_three_ticks_make_exactly_one_digest_per_period_per_schedule(
    deploy, sendgrid
):
    # Given 40 daily digest schedules, each of a group with news
    system = deploy(worker=(2, 4))
    started = time.monotonic()
    with db.connection():
        families = [family() for _ in range(SCHEDULES)]
        for fam in families:
            schedule_for(fam, utcnow() - timedelta(days=2))

    for tick in range(TICKS):
        # When a new period is due (the clock has moved on: the schedules' next run is past)
        # and two schedulers each send the minute's digest tick, at the same instant
        with db.connection():
            # (dated as a post whose request began a minute ago: a digest's window ends a
            # minute before its scan, so this lands in the coming period's window)
            posted = utcnow() - WINDOW_SETTLE
            for fam in families:
                update_in(fam.group, title=f"News of period {tick}", created_at=posted)
            DigestSchedule.update(
                next_digest_scheduled=utcnow() - timedelta(minutes=10 * (TICKS - tick))
            ).execute()
        concurrently(
            lambda: system.send_tick(Actor.SCHEDULE_DUE_DIGESTS),
            lambda: system.send_tick(Actor.SCHEDULE_DUE_DIGESTS),
        )
        wanted = SCHEDULES * (tick + 1)

        def period_sent(wanted=wanted):
            with db.connection():
                jobs = digest_jobs()
            return len(jobs) >= wanted and all(job.status == JobStatus.SENT for job in jobs)

        wait_until(period_sent, timeout=30, what=f"the digests of tick {tick + 1}")
    # (a last look once the queues are empty: a late second job would show now)
    wait_until(system.drained, timeout=15, what="the queues to drain")

    # Then every schedule got exactly one digest per period, each sent exactly once
    with db.connection():
        jobs = digest_jobs()
    per_schedule_and_period = Counter((job.digest_schedule_id, job.digest_period) for job in jobs)
    per_schedule = Counter(job.digest_schedule_id for job in jobs)
    job_ids = [str(job.id) for job in jobs]
    figures = figures_for(
        "two schedulers for 3 ticks (digests)",
        system,
        job_ids,
        started,
        schedules=SCHEDULES,
        ticks=TICKS,
        ticks_sent=2 * TICKS,
        digest_jobs=len(jobs),
    )
    assert len(jobs) == SCHEDULES * TICKS
    assert set(per_schedule_and_period.values()) == {1}
    assert set(per_schedule.values()) == {TICKS}
    assert (figures.lost, figures.duplicates) == (0, 0)
