"""GET /api/jobs reads a page in the order of an index, whatever the sort: PostgreSQL's plans.

How fast that is with a million jobs is measured by ``bench/jobs_list.py``; here, with sorting
made prohibitively expensive for the planner, every query of a page must still plan without
one: proof that an index gives its order, for a user and for the service role.
"""

from __future__ import annotations

import uuid

import pytest

from tribe_api.auth import Principal
from tribe_api.resources.jobs import SORT_KEYS, capped, sorted_parts, visible_jobs
from tribe_shared.db import database
from tribe_shared.models import NotificationJob

USER = Principal(user_id=uuid.uuid4(), role="authenticated")
SERVICE = Principal(user_id=uuid.uuid4(), role="service_role")


def plan_of(query) -> str:
    """The plan of a page of ``query`` (the third page of 50, and one more to tell has_more)."""
    return explain(query.limit(51).offset(100))


def explain(query) -> str:
    sql, params = query.sql()
    rows = database.execute_sql(f"EXPLAIN {sql}", params).fetchall()
    return "\n".join(line for (line,) in rows)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORT_KEYS))
@pytest.mark.parametrize("principal", [USER, SERVICE], ids=["user", "service role"])
def test_every_sort_reads_a_page_in_index_order(db_url, principal, sort, order):
    with database.atomic():
        database.execute_sql("SET LOCAL enable_sort = off")
        plans = [
            plan_of(part) for part in sorted_parts(visible_jobs(principal), sort, order == "desc")
        ]

    for plan in plans:
        assert "Index" in plan and "Sort" not in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_users_jobs_of_one_notification_type_are_read_from_their_own_index(db_url, order):
    # A rare type among many jobs: without an index of (owner, type, ...) the page and the count
    # read every job of the user to check its type.
    jobs = visible_jobs(USER).where(NotificationJob.notification_type == "digest")
    with database.atomic():
        database.execute_sql("SET LOCAL enable_sort = off")
        (page,) = sorted_parts(jobs, "created_at", order == "desc")
        plans = [plan_of(page), explain(capped(jobs))]

    for plan in plans:
        assert "owner_id_notification_type" in plan and "Sort" not in plan, plan
