"""The due-digest scan: one digest job per schedule and run, however often or by how many
schedulers it runs, on the local delivery time across DST, with one digest after downtime."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dramatiq

from tests.support.clocks import Clock
from tests.support.digests import digest_jobs, reload_schedule, schedule_for
from tests.support.family import Family, family, group_of, recipient_of, user
from tests.support.queues import queued_messages
from tribe_shared import db
from tribe_shared.contract import Actor, JobKind, JobStatus, NotificationType, Queue
from tribe_shared.models import DigestSchedule
from tribe_shared.outbox import Outbox
from tribe_worker.actors import DIGEST_TICK_HELPERS
from tribe_worker.digest_scan import BATCH_SIZE, WINDOW_SETTLE, schedule_due_digests

#: Created on Monday 2 November 2026, 12:00 UTC.
CREATED = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
ZONE_LONDON = ZoneInfo("Europe/London")
ZONE_SYDNEY = ZoneInfo("Australia/Sydney")


def run_through(schedule: DigestSchedule, until: datetime, clock: Clock) -> list[datetime]:
    """Tick as the scheduler would around each run up to ``until``: a minute before it, just
    after it and again a minute later; return the runs that got a digest job."""
    while (due := reload_schedule(schedule).next_digest_scheduled) <= until:
        for offset in (timedelta(minutes=-1), timedelta(seconds=20), timedelta(seconds=80)):
            clock.now = due + offset
            schedule_due_digests(Outbox(None), clock=clock)
    return [job.digest_period for job in digest_jobs(schedule)]


def test_a_due_schedule_becomes_one_digest_job_handed_over_and_moves_to_its_next_run(
    worker_app, stub_broker
):
    # Given a daily 09:00 UTC schedule whose first run (3 November) has come
    fam = family()
    schedule = schedule_for(fam, CREATED)
    due = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    clock = Clock(due + timedelta(seconds=15))

    # When the scheduler ticks
    made = schedule_due_digests(Outbox(stub_broker), clock=clock)

    # Then one digest job covers the window up to now, and is on the broker
    (job,) = digest_jobs(schedule)
    assert made == 1
    assert job.kind == JobKind.DIGEST
    assert job.notification_type == NotificationType.DIGEST
    assert job.status == JobStatus.QUEUED
    assert (job.recipient_id, job.group_id, job.owner_id) == (
        fam.recipient.id,
        fam.group.id,
        fam.owner.id,
    )
    assert job.digest_period == due
    assert job.content == {"window_end": (clock.now - WINDOW_SETTLE).isoformat()}
    (message,) = queued_messages(stub_broker)
    assert message.actor_name == Actor.BUILD_DIGEST
    assert message.args == (str(job.id),)
    # And the schedule's next run is tomorrow's
    assert reload_schedule(schedule).next_digest_scheduled == due + timedelta(days=1)


def test_a_repeated_tick_makes_no_second_job(worker_app, stub_broker):
    schedule = schedule_for(family(), CREATED)
    clock = Clock(datetime(2026, 11, 3, 9, 0, 30, tzinfo=UTC))
    assert schedule_due_digests(Outbox(stub_broker), clock=clock) == 1
    assert schedule_due_digests(Outbox(stub_broker), clock=clock) == 0
    assert len(digest_jobs(schedule)) == 1
    assert len(queued_messages(stub_broker)) == 1


def test_a_tick_that_finds_a_run_already_made_into_a_job_makes_no_second_one(
    worker_app, stub_broker
):
    # Given a run already turned into a job, and a schedule that still points at that run
    # (what a second scheduler that read the schedule before the first one's commit would see)
    schedule = schedule_for(family(), CREATED)
    due = schedule.next_digest_scheduled
    clock = Clock(due + timedelta(seconds=5))
    schedule_due_digests(Outbox(stub_broker), clock=clock)
    DigestSchedule.update(next_digest_scheduled=due).where(
        DigestSchedule.id == schedule.id
    ).execute()

    # When it ticks again
    made = schedule_due_digests(Outbox(stub_broker), clock=clock)

    # Then the unique key on (schedule, run) keeps the run to one job, sent once
    assert made == 0
    assert [job.digest_period for job in digest_jobs(schedule)] == [due]
    assert len(queued_messages(stub_broker)) == 1
    assert reload_schedule(schedule).next_digest_scheduled == due + timedelta(days=1)


def test_after_downtime_one_digest_covers_the_whole_gap(worker_app, stub_broker):
    # Given a daily schedule whose scheduler was down for four days
    schedule = schedule_for(family(), CREATED)
    clock = Clock(datetime(2026, 11, 6, 15, 0, tzinfo=UTC))

    # When it comes back
    schedule_due_digests(Outbox(stub_broker), clock=clock)

    # Then one digest goes out, covering everything up to now (less the settling minute), and
    # the next run is tomorrow's
    (job,) = digest_jobs(schedule)
    assert job.content["window_end"] == (clock.now - WINDOW_SETTLE).isoformat()
    next_run = reload_schedule(schedule).next_digest_scheduled
    assert next_run == datetime(2026, 11, 7, 9, 0, tzinfo=UTC)


def test_paused_and_not_yet_due_schedules_are_left_alone(worker_app, stub_broker):
    owner = user()
    group = group_of(owner)
    paused = schedule_for(
        family_of(owner, group, "Paused"), CREATED, is_active=False, delivery_time="12:10:00"
    )
    later = schedule_for(family_of(owner, group, "Later"), CREATED, delivery_time="23:00:00")
    clock = Clock(datetime(2026, 11, 2, 12, 30, tzinfo=UTC))

    assert schedule_due_digests(Outbox(stub_broker), clock=clock) == 0
    assert digest_jobs() == []
    assert reload_schedule(paused).next_digest_scheduled == paused.next_digest_scheduled
    assert reload_schedule(later).next_digest_scheduled == later.next_digest_scheduled


def family_of(owner, group, name: str) -> Family:
    return Family(owner, group, recipient_of(owner, name=name, groups=(group,)))


def test_a_schedule_that_cannot_run_is_deactivated_and_the_others_go_on(
    worker_app, stub_broker, caplog
):
    # Given a due schedule whose zone is not (any more) a known one, and a good one
    owner = user()
    group = group_of(owner)
    broken = schedule_for(family_of(owner, group, "Broken"), CREATED)
    DigestSchedule.update(timezone="Atlantis/Capital").where(
        DigestSchedule.id == broken.id
    ).execute()
    good = schedule_for(family_of(owner, group, "Good"), CREATED)

    # When the scheduler ticks
    made = schedule_due_digests(
        Outbox(stub_broker), clock=Clock(datetime(2026, 11, 3, 9, 1, tzinfo=UTC))
    )

    # Then the good one got its digest and the broken one is paused, with an error logged
    assert made == 1
    assert [job.digest_schedule_id for job in digest_jobs()] == [good.id]
    assert reload_schedule(broken).is_active is False
    assert any("Atlantis/Capital" in r.getMessage() for r in caplog.records)


def test_a_daily_new_york_digest_follows_the_clock_change_in_march_and_november(db_url):
    # Given a daily 09:00 America/New_York schedule, created before the March change
    fam = family()
    schedule = schedule_for(
        fam, datetime(2026, 2, 28, 12, 0, tzinfo=UTC), timezone="America/New_York"
    )
    clock = Clock(CREATED)

    # When the scheduler ticks around every run until after the November change
    runs = run_through(schedule, datetime(2026, 11, 10, 23, 0, tzinfo=UTC), clock)

    # Then there is one digest a day, every day, at 09:00 New York time:
    # 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT)
    days = [run.date() for run in runs]
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]
    assert days[0].isoformat() == "2026-02-28"
    assert days[-1].isoformat() == "2026-11-10"
    for run in runs:
        summer = datetime(2026, 3, 8, 7, tzinfo=UTC) <= run < datetime(2026, 11, 1, 6, tzinfo=UTC)
        assert run.hour == (13 if summer else 14), run
        assert run.minute == 0


def test_monthly_on_the_31st_runs_on_the_last_day_of_shorter_months(db_url):
    schedule = schedule_for(
        family(),
        datetime(2027, 1, 1, tzinfo=UTC),
        frequency="monthly",
        delivery_day=31,
        delivery_time="18:00:00",
        timezone="Europe/London",
    )
    runs = run_through(schedule, datetime(2028, 3, 1, tzinfo=UTC), Clock(CREATED))
    local_days = [run.astimezone(ZONE_LONDON).date().isoformat() for run in runs]
    assert local_days[:6] == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
    ]
    assert local_days[-1] == "2028-02-29"
    assert len(local_days) == 14
    assert {run.astimezone(ZONE_LONDON).hour for run in runs} == {18}


def test_weekly_on_day_7_runs_on_sundays(db_url):
    schedule = schedule_for(
        family(), CREATED, frequency="weekly", delivery_day=7, timezone="Australia/Sydney"
    )
    runs = run_through(schedule, datetime(2027, 1, 31, tzinfo=UTC), Clock(CREATED))
    local = [run.astimezone(ZONE_SYDNEY) for run in runs]
    assert len(local) == 13
    assert {day.isoweekday() for day in local} == {7}
    assert {(day.hour, day.minute) for day in local} == {(9, 0)}
    assert [(b - a).days for a, b in itertools.pairwise(local)] == [7] * 12


def test_two_schedulers_at_once_make_exactly_one_digest_per_period(db_url):
    # Given 300 daily schedules
    owner = user()
    group = group_of(owner)
    schedules = [schedule_for(family_of(owner, group, f"R{n}"), CREATED) for n in range(300)]
    made: list[int] = []

    def scheduler(now: datetime, start: threading.Barrier) -> None:
        start.wait(timeout=10)
        with db.connection():
            made.append(schedule_due_digests(Outbox(None), clock=Clock(now), batch_size=40))

    # When two schedulers tick at the same moment, on each of three days
    for day in range(3):
        now = datetime(2026, 11, 3 + day, 9, 0, 10, tzinfo=UTC)
        start = threading.Barrier(2)
        threads = [threading.Thread(target=scheduler, args=(now, start)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # Then every schedule has exactly one digest for each of the three days
    jobs = digest_jobs()
    assert sum(made) == len(jobs) == 3 * len(schedules)
    periods: dict = {}
    for job in jobs:
        periods.setdefault(job.digest_schedule_id, []).append(job.digest_period)
    expected = [datetime(2026, 11, 3 + day, 9, 0, tzinfo=UTC) for day in range(3)]
    assert len(periods) == len(schedules)
    assert all(sorted(runs) == expected for runs in periods.values())


def test_a_tick_with_more_due_than_one_batch_calls_for_help_once(worker_app, stub_broker):
    # Given more due schedules than one batch holds
    owner = user()
    group = group_of(owner)
    schedules = [schedule_for(family_of(owner, group, f"R{n}"), CREATED) for n in range(25)]
    calls: list[int] = []
    clock = Clock(datetime(2026, 11, 3, 9, 0, 10, tzinfo=UTC))

    # When the scan runs with batches of 10
    made = schedule_due_digests(
        Outbox(None),
        clock=clock,
        batch_size=10,
        on_backlog=lambda: calls.append(len(digest_jobs())),
    )

    # Then it asked for help once, after its first batch, and still did every schedule
    assert calls == [10]
    assert made == len(digest_jobs()) == len(schedules)


def test_the_digest_tick_actor_sends_helpers_for_a_backlog_and_helpers_send_none(
    worker_app, stub_broker
):
    # Given more due schedules than one batch of the actor (1,000)
    owner = user()
    group = group_of(owner)
    fams = [family_of(owner, group, f"R{n}") for n in range(BATCH_SIZE + 1)]
    due = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    DigestSchedule.insert_many(
        [
            {
                "id": uuid.uuid4(),
                "owner": owner.id,
                "recipient": fam.recipient.id,
                "group": group.id,
                "frequency": "daily",
                "delivery_time": "09:00:00",
                "timezone": "UTC",
                "next_digest_scheduled": due,
                "created_at": CREATED,
                "updated_at": CREATED,
            }
            for fam in fams
        ]
    ).execute()
    tick = worker_app.actors[Actor.SCHEDULE_DUE_DIGESTS]

    # When the scheduler's tick runs
    tick()

    # Then every schedule got its digest, and three helper ticks were sent for the backlog
    assert len(digest_jobs()) == len(fams)
    helpers = [
        m
        for m in (dramatiq.Message.decode(d) for d in stub_broker.queues[Queue.MAINTENANCE].queue)
        if m.actor_name == Actor.SCHEDULE_DUE_DIGESTS
    ]
    assert [m.args for m in helpers] == [(True,)] * DIGEST_TICK_HELPERS

    # And a helper that finds a backlog itself sends no more helpers
    DigestSchedule.update(next_digest_scheduled=due + timedelta(days=1)).execute()
    stub_broker.flush_all()
    tick(True)
    assert list(stub_broker.queues[Queue.MAINTENANCE].queue) == []
