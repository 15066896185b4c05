"""Two scheduler processes at once (a deploy that overlaps, a scheduler scaled to two by mistake):
each periodic tick arrives twice, and still each pending job is handed over once and digests go
out once per period."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import timedelta

from tests.faults.figures import figures_for
from tests.support.concurrency import concurrently
from tests.support.deployment import DELIVERY_TIMEOUT, PAST_GRACE, ids_of
from tests.support.digests import digest_jobs, schedule_for
from tests.support.family import family, update_in
from tests.support.waiting import settle, wait_until
from tribe_shared import db
from tribe_shared.contract import Actor, JobStatus, Queue
from tribe_shared.models import DigestSchedule, utcnow
from tribe_worker.digest_scan import WINDOW_SETTLE
from tribe_worker.relay import GRACE

#: Digest schedules, and the periods their two schedulers tick through.
SCHEDULES = 40
TICKS = 3


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
