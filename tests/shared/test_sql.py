"""Each hand-written statement (:mod:`tribe_shared.sql`) writes exactly the row peewee's model
would: the same data written both ways, once by the fast path and once through the model, reads
back column for column the same (but for ids), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.family import family
from tribe_shared.contract import (
    DeliveryOutcome,
    DeliveryStatus,
    JobKind,
    JobStatus,
    NotificationType,
    Urgency,
)
from tribe_shared.db import database
from tribe_shared.models import (
    DeliveryLog,
    DigestSchedule,
    EmailEvent,
    NotificationJob,
    Suppression,
)
from tribe_shared.sql.delivery import claim, record_sent
from tribe_shared.sql.digest_scan import move_schedules
from tribe_shared.sql.events import (
    BlockRow,
    EventRow,
    OutcomeRow,
    SuppressRow,
    apply_outcome,
    clear_blocks,
    count_blocks,
    store_events,
    suppress,
)
from tribe_shared.sql.insert import insert_jobs_like, insert_models

NOW = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)
#: Columns that differ between the two rows by design: their own ids, and what points at them.
IDS = {"id", "job_id"}


def row(model, object_id) -> dict:
    """The row as the database holds it (raw values, as the driver returns them)."""
    table, key = model._meta.table_name, model._meta.primary_key.column_name
    cursor = database.execute_sql(
        f'SELECT * FROM "{table}" WHERE "{key}" = {database.param}',
        [model._meta.primary_key.db_value(object_id)],
    )
    names = [column[0] for column in cursor.description]
    (values,) = cursor.fetchall()
    return {name: value for name, value in zip(names, values, strict=True) if name not in IDS}


@pytest.fixture
def fam(db_url):
    return family(email="nana@example.com")


def email(fam, **fields) -> NotificationJob:
    """A new job with every column set to something (None only where the model allows it)."""
    values = {
        "id": uuid.uuid4(),
        "kind": JobKind.EMAIL,
        "status": JobStatus.QUEUED,
        "owner": fam.owner.id,
        "created_by": fam.owner.id,
        "recipient": fam.recipient.id,
        "group": fam.group.id,
        "to_email": "nana@example.com",
        "notification_type": NotificationType.IMMEDIATE,
        "urgency": Urgency.HIGH,
        "content": {"type": "system", "subject": "Hi é", "templateData": {"n": [1, {"a": None}]}},
        "batch_key": "k" * 64,
        "scheduled_for": NOW + timedelta(minutes=3),
        "created_at": NOW,
        "queued_at": NOW,
        **fields,
    }
    return NotificationJob(**values)


def same_row_twice(write_fast, write_model, model=NotificationJob) -> tuple[dict, dict]:
    """Write with each, return the two rows."""
    fast_id, model_id = write_fast(), write_model()
    return row(model, fast_id), row(model, model_id)


def new_jobs_by_insert_models(fam):
    def fast():
        job = email(fam)
        insert_models(NotificationJob, [job])
        return job.id

    def through_model():
        job = email(fam)
        job.save(force_insert=True)
        return job.id

    return fast, through_model


def new_jobs_like_a_template(fam):
    other = family(fam.owner.id, email="grandpa@example.com")
    template = email(fam, status=JobStatus.PENDING, queued_at=None, batch_key=None)
    varying = ("id", "owner", "recipient", "to_email", "status", "queued_at")

    def fast():
        job_id = uuid.uuid4()
        values = (job_id, fam.owner.id, other.recipient.id, "grandpa@example.com", "queued", NOW)
        db_values = [
            getattr(NotificationJob, n).db_value(v) for n, v in zip(varying, values, strict=True)
        ]
        insert_jobs_like(template, varying, [db_values])
        return job_id

    def through_model():
        job = NotificationJob(**{**template.__data__, "id": uuid.uuid4()})
        job.owner, job.recipient = fam.owner.id, other.recipient.id
        job.to_email = "grandpa@example.com"
        job.status, job.queued_at = "queued", NOW
        job.save(force_insert=True)
        return job.id

    return fast, through_model


def a_claim(fam):
    def fast():
        job = email(fam, scheduled_for=NOW)
        job.save(force_insert=True)
        (claimed,) = claim([job.id], NOW, NOW)
        assert claimed.id == job.id and claimed.attempts == 1
        return job.id

    def through_model():
        job = email(fam, scheduled_for=NOW)
        job.save(force_insert=True)
        NotificationJob.update(
            status=JobStatus.PROCESSING, claimed_at=NOW, attempts=NotificationJob.attempts + 1
        ).where(NotificationJob.id == job.id).execute()
        return job.id

    return fast, through_model


def a_record_of_a_send(fam):
    def fast():
        job = email(fam, status=JobStatus.QUEUED, scheduled_for=NOW)
        job.save(force_insert=True)
        record_sent(claim([job.id], NOW, NOW), "sendgrid", "msg-1", 42, NOW)
        return job.id

    def through_model():
        job = email(fam, status=JobStatus.QUEUED, scheduled_for=NOW)
        job.save(force_insert=True)
        claim([job.id], NOW, NOW)
        DeliveryLog.create(
            job=job.id,
            attempt=1,
            provider="sendgrid",
            provider_message_id="msg-1",
            status=DeliveryStatus.SENT,
            duration_ms=42,
            created_at=NOW,
        )
        NotificationJob.update(
            status=JobStatus.SENT, message_id="msg-1", processed_at=NOW, failure_reason=None
        ).where(NotificationJob.id == job.id).execute()
        return job.id

    return fast, through_model


FAST_PATHS = {
    "insert_models": new_jobs_by_insert_models,
    "insert_jobs_like": new_jobs_like_a_template,
    "claim": a_claim,
    "record_sent": a_record_of_a_send,
}


@pytest.mark.parametrize("path", list(FAST_PATHS))
def test_each_fast_path_writes_the_job_row_the_model_would(fam, path):
    fast, through_model = FAST_PATHS[path](fam)

    written_fast, written_by_model = same_row_twice(fast, through_model)

    assert written_fast == written_by_model


def test_the_record_of_a_send_writes_the_log_row_the_model_would(fam):
    fast, through_model = a_record_of_a_send(fam)
    fast_job, model_job = fast(), through_model()

    (fast_log,) = DeliveryLog.select(DeliveryLog.id).where(DeliveryLog.job == fast_job)
    (model_log,) = DeliveryLog.select(DeliveryLog.id).where(DeliveryLog.job == model_job)

    assert row(DeliveryLog, fast_log.id) == row(DeliveryLog, model_log.id)


def test_moving_schedules_writes_the_row_the_model_would(db_url):
    fam = family(email="nana@example.com")
    schedules = [
        DigestSchedule.create(
            owner=fam.owner.id,
            recipient=fam.recipient.id if n == 0 else family(email="b@example.com").recipient.id,
            group=fam.group.id,
            frequency="daily",
            delivery_time="09:00:00",
            timezone="Europe/Paris",
            created_at=NOW,
            updated_at=NOW,
        )
        for n in range(2)
    ]
    next_run, later = NOW + timedelta(days=1), NOW + timedelta(seconds=7)
    # The scan passes the ids as it read them: text
    as_read = DigestSchedule.select(DigestSchedule.id.cast("TEXT")).where(
        DigestSchedule.id == schedules[0].id
    )
    move_schedules([(as_read.scalar(), next_run)], later)
    DigestSchedule.update(next_digest_scheduled=next_run, updated_at=later).where(
        DigestSchedule.id == schedules[1].id
    ).execute()

    fast, by_model = (row(DigestSchedule, s.id) for s in schedules)
    for columns in (fast, by_model):
        columns.pop("recipient_id")
    assert fast == by_model


# --- SendGrid's event webhook (tribe_shared.sql.events) -------------------------------------


def test_storing_events_writes_the_row_the_model_would_and_skips_one_seen_before(db_url):
    job_id = uuid.uuid4()
    event = EventRow(
        "ev-fast", job_id, "bounce", "nana@example.com", NOW, NOW + timedelta(seconds=2),
        "msg-1.filter", {"type": "bounce", "reason": "550 5.1.1 Unknown é"},
    )  # fmt: skip
    EmailEvent.create(**{**event._asdict(), "sg_event_id": "ev-model"})

    assert store_events([event]) == {"ev-fast"}
    assert store_events([event]) == set()  # posted again: nothing new

    fast, by_model = row(EmailEvent, "ev-fast"), row(EmailEvent, "ev-model")
    assert {**fast, "sg_event_id": None} == {**by_model, "sg_event_id": None}


def test_applying_an_outcome_writes_the_row_the_model_would(fam):
    fast, through_model = (email(fam, status=JobStatus.SENT) for _ in range(2))
    for job in (fast, through_model):
        job.save(force_insert=True)

    apply_outcome(DeliveryOutcome.BOUNCED, [OutcomeRow(fast.id, NOW, "550 Unknown user")])
    NotificationJob.update(
        delivery_outcome=DeliveryOutcome.BOUNCED, delivery_outcome_at=NOW,
        delivery_reason="550 Unknown user",
    ).where(NotificationJob.id == through_model.id).execute()  # fmt: skip

    assert row(NotificationJob, fast.id) == row(NotificationJob, through_model.id)


def test_an_outcome_never_moves_a_job_back(fam):
    job = email(fam, status=JobStatus.SENT)
    job.save(force_insert=True)

    apply_outcome(DeliveryOutcome.BOUNCED, [OutcomeRow(job.id, NOW, "550")])
    moved = apply_outcome(DeliveryOutcome.DELIVERED, [OutcomeRow(job.id, NOW, "250 OK")])

    assert moved == 0
    assert NotificationJob.get_by_id(job.id).delivery_outcome == DeliveryOutcome.BOUNCED


def test_suppressing_writes_the_row_the_model_would_and_keeps_the_first_reason(db_url):
    suppress([SuppressRow("a@example.com", "bounced", "550", "sendgrid:bounce")], NOW)
    Suppression.create(
        email="b@example.com", reason="bounced", detail="550", source="sendgrid:bounce",
        soft_bounces=0, suppressed_at=NOW, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    suppress([SuppressRow("a@example.com", "complained", None, "sendgrid:spamreport")], NOW)

    assert {**row(Suppression, "a@example.com"), "email": None} == {
        **row(Suppression, "b@example.com"),
        "email": None,
    }


def test_blocks_suppress_an_address_only_once_enough_came_without_a_delivery(db_url):
    count_blocks([BlockRow("a@example.com", 2, "blocked")], NOW)
    clear_blocks(["a@example.com"], NOW)
    count_blocks([BlockRow("a@example.com", 2, "blocked")], NOW)
    assert Suppression.get_by_id("a@example.com").suppressed_at is None

    count_blocks([BlockRow("a@example.com", 1, "blocked again")], NOW)

    suppressed = Suppression.get_by_id("a@example.com")
    assert (suppressed.reason, suppressed.soft_bounces) == ("blocked", 3)
    assert suppressed.suppressed_at == NOW
