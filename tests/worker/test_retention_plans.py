"""Retention reads its batches in index order, never by a scan of the jobs table: PostgreSQL's
plans with sequential scans and sorts made prohibitively expensive for the planner (how fast a
million rows go is measured by ``bench/retention.py``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tribe_shared.db import database
from tribe_shared.models import DeliveryLog, utcnow
from tribe_worker.retention import BATCH_SIZE, expired_jobs, unscrubbed_jobs

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

CUTOFF = utcnow() - timedelta(days=90)


def plan_of(query) -> str:
    sql, params = query.sql()
    with database.atomic():
        database.execute_sql("SET LOCAL enable_seqscan = off")
        database.execute_sql("SET LOCAL enable_sort = off")
        rows = database.execute_sql(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(line for (line,) in rows)


def test_expired_jobs_are_read_oldest_first_through_the_processed_at_index(db_url):
    plan = plan_of(expired_jobs(CUTOFF, BATCH_SIZE))

    assert "processed_at_id" in plan and "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan


def test_jobs_to_scrub_are_read_through_the_index_of_unscrubbed_jobs(db_url):
    plan = plan_of(unscrubbed_jobs(CUTOFF, BATCH_SIZE))

    assert "notification_jobs_processed_at_unscrubbed" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, plan


def test_a_batch_s_delivery_logs_are_found_through_their_job_index(db_url):
    query = DeliveryLog.delete().where(DeliveryLog.job.in_([uuid.uuid4() for _ in range(3)]))

    plan = plan_of(query)

    assert "Index" in plan and "Seq Scan" not in plan, plan
