"""GET /api/jobs reads a page in the order of an index, whatever the sort: PostgreSQL's plans.

How fast that is with a million jobs is measured by ``bench/jobs_list.py``; here, with sorting
made prohibitively expensive for the planner, every query of a page must still plan without
one: proof that an index gives its order, for a user and for the service role.
"""

from __future__ import annotations

import uuid

import pytest

from tribe_api.access import visible
from tribe_api.auth import Principal
from tribe_api.jobs import SORT_KEYS, capped, sorted_parts
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
            plan_of(part)
            for part in sorted_parts(visible(NotificationJob, principal), sort, order == "desc")
        ]

    for plan in plans:
        assert "Index" in plan and "Sort" not in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize(
    ("principal", "index"),
    [
        (USER, "owner_id_notification_type"),  # a user's own, owner first
        (SERVICE, "notification_type_not_immediate"),  # all jobs but the immediate ones
    ],
    ids=["user", "service role"],
)
def test_digest_jobs_are_read_from_an_index_of_their_type(db_url, principal, index, order):
    # Given many users' jobs, 1 in 20 a digest, and the planner's statistics of them
    owners = [principal.user_id, *(uuid.uuid4() for _ in range(49))]
    with database.atomic():
        database.execute_sql(
            "INSERT INTO users (id, created_at) SELECT unnest(%s::uuid[]), now()",
            [[str(owner) for owner in owners]],
        )
        database.execute_sql(
            "INSERT INTO notification_jobs (id, kind, status, owner_id, notification_type, "
            "urgency, delivery_method, content, scheduled_for, created_at, attempts, "
            "retry_count, lease_losses) "
            "SELECT gen_random_uuid(), 'notification', 'sent', (%s::uuid[])[1 + j %% 50], "
            "CASE WHEN j %% 20 = 0 THEN 'digest' ELSE 'immediate' END, 'normal', 'email', "
            "'{}', now(), now() - j * interval '1 second', 1, 0, 0 "
            "FROM generate_series(1, 20000) j",
            [[str(owner) for owner in owners]],
        )
    database.execute_sql("ANALYZE notification_jobs")
    jobs = visible(NotificationJob, principal).where(NotificationJob.notification_type == "digest")

    # When a page of their digests and its count are planned
    with database.atomic():
        database.execute_sql("SET LOCAL enable_sort = off")
        (page,) = sorted_parts(jobs, "created_at", order == "desc")
        plans = [plan_of(page), explain(capped(jobs))]

    # Then both read the index of the type, in order
    for plan in plans:
        assert index in plan and "Sort" not in plan, plan
