"""GET /api/jobs: the caller's jobs, filtered, sorted and paginated; every parameter validated."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.support.family import group_of, recipient_of, user
from tests.support.family_api import JOBS, job_row
from tests.support.http_assertions import assert_json_error, error_fields
from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus, NotificationType
from tribe_shared.db import database
from tribe_shared.models import Group, NotificationJob, Recipient, utcnow


def listed(api, headers, query: str = "") -> dict:
    response = api.simulate_get(JOBS, query_string=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json


def names_in(body: dict, jobs: dict[str, NotificationJob]) -> list[str]:
    """The names (keys of ``jobs``) of the listed jobs, in the order listed."""
    by_id = {str(job.id): name for name, job in jobs.items()}
    return [by_id[job["id"]] for job in body["jobs"]]


def contract_pagination(body: dict) -> dict:
    """The pagination fields the contract promises (the API may add more)."""
    return {key: body["pagination"][key] for key in ("total", "limit", "offset", "has_more")}


# --- filters -------------------------------------------------------------------------------


@dataclass
class Household:
    """Alice's two groups, a recipient in each, and five jobs that differ in every filter."""

    grandparents: Group
    friends: Group
    nana: Recipient
    joe: Recipient
    jobs: dict[str, NotificationJob]


@pytest.fixture
def household(tokens) -> Household:
    alice = user(tokens.alice_id)
    grandparents, friends = group_of(alice, "Grandparents"), group_of(alice, "Friends")
    nana = recipient_of(alice, groups=(grandparents,))
    joe = recipient_of(alice, name="Joe", email="joe@example.org", groups=(friends,))

    def to(recipient, group, **fields):
        fields = {"kind": JobKind.NOTIFICATION, **fields}
        return job_row(alice.id, recipient=recipient.id, group=group.id, **fields)

    jobs = {
        "welcome email": job_row(alice.id, status=JobStatus.SENT),
        "nana sms": to(
            nana, grandparents, status=JobStatus.QUEUED, delivery_method=DeliveryMethod.SMS
        ),
        "nana digest": to(
            nana,
            grandparents,
            kind=JobKind.DIGEST,
            status=JobStatus.PENDING,
            notification_type=NotificationType.DIGEST,
        ),
        "joe email": to(joe, friends, status=JobStatus.FAILED),
        "joe whatsapp": to(
            joe,
            friends,
            status=JobStatus.CANCELLED,
            delivery_method=DeliveryMethod.WHATSAPP,
            notification_type=NotificationType.DIGEST,
        ),
    }
    return Household(grandparents, friends, nana, joe, jobs)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda h: "status=failed", {"joe email"}),
        (lambda h: "status=queued", {"nana sms"}),
        (lambda h: "delivery_method=email", {"welcome email", "nana digest", "joe email"}),
        (lambda h: "delivery_method=whatsapp", {"joe whatsapp"}),
        (lambda h: "notification_type=digest", {"nana digest", "joe whatsapp"}),
        (lambda h: "notification_type=immediate", {"welcome email", "nana sms", "joe email"}),
        (lambda h: f"recipient_id={h.nana.id}", {"nana sms", "nana digest"}),
        (lambda h: f"group_id={h.friends.id}", {"joe email", "joe whatsapp"}),
        (lambda h: f"delivery_method=email&recipient_id={h.joe.id}", {"joe email"}),
        (lambda h: f"status=sent&group_id={h.friends.id}", set()),
    ],
    ids=[
        "status failed",
        "status queued",
        "delivery_method email",
        "delivery_method whatsapp",
        "notification_type digest",
        "notification_type immediate",
        "recipient_id",
        "group_id",
        "two filters together",
        "filters that nothing matches",
    ],
)
def test_each_filter_narrows_the_list_to_the_jobs_that_match(
    api, tokens, household, query, expected
):
    body = listed(api, tokens.alice, query(household))

    assert set(names_in(body, household.jobs)) == expected
    assert body["pagination"]["total"] == len(expected)


def test_without_filters_every_job_of_the_caller_is_listed(api, tokens, household):
    body = listed(api, tokens.alice)

    assert set(names_in(body, household.jobs)) == set(household.jobs)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=delivered", "status"),
        ("status=", "status"),
        ("delivery_method=fax", "delivery_method"),
        ("notification_type=weekly", "notification_type"),
        ("recipient_id=not-a-uuid", "recipient_id"),
        (f"group_id={uuid.uuid4()}x", "group_id"),
        ("sort=priority", "sort"),
        ("order=up", "order"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("colour=blue", "colour"),
        ("statuses=sent", "statuses"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it_never_an_empty_list(
    api, tokens, household, query, field
):
    response = api.simulate_get(JOBS, query_string=query, headers=tokens.alice)

    body = assert_json_error(response, 400)
    assert error_fields(body) == {field}
    assert "jobs" not in body


# --- sorting -------------------------------------------------------------------------------

#: Five jobs: status, then minutes after a start for created_at, scheduled_for, processed_at.
#: Each sort field puts them in a different order; two were never processed.
SORTABLE = {
    "a": (JobStatus.SENT, 1, 40, 50),
    "b": (JobStatus.FAILED, 2, 10, 20),
    "c": (JobStatus.QUEUED, 3, 30, None),
    "d": (JobStatus.CANCELLED, 4, 50, 10),
    "e": (JobStatus.PENDING, 5, 20, None),
}
#: The expected ascending order by each field, and the jobs with no value (listed last).
ASCENDING = {
    "created_at": (["a", "b", "c", "d", "e"], set()),
    "scheduled_for": (["b", "e", "c", "a", "d"], set()),
    "processed_at": (["d", "b", "a"], {"c", "e"}),
    "status": (["d", "b", "e", "c", "a"], set()),
}


@pytest.fixture
def sortable(tokens) -> dict[str, NotificationJob]:
    alice = user(tokens.alice_id)
    start = utcnow() - timedelta(days=1)

    def at(minutes):
        return None if minutes is None else start + timedelta(minutes=minutes)

    return {
        name: job_row(
            alice.id,
            status=status,
            created_at=at(created),
            scheduled_for=at(scheduled),
            processed_at=at(processed),
        )
        for name, (status, created, scheduled, processed) in SORTABLE.items()
    }


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(ASCENDING))
def test_jobs_sort_by_the_field_asked_in_the_order_asked_with_missing_values_last(
    api, tokens, sortable, sort, order
):
    ascending, missing = ASCENDING[sort]
    expected = ascending if order == "asc" else ascending[::-1]

    names = names_in(listed(api, tokens.alice, f"sort={sort}&order={order}"), sortable)

    assert names[: len(expected)] == expected
    assert set(names[len(expected) :]) == missing


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_jobs_of_one_status_are_listed_by_creation_time_in_the_order_asked(api, tokens, order):
    alice = user(tokens.alice_id)
    start = utcnow() - timedelta(hours=1)
    # ids in the opposite order of creation, so an order by id alone would show it
    ids = sorted((uuid.uuid4() for _ in range(4)), reverse=True)
    created = [
        job_row(alice.id, id=job_id, status=JobStatus.SENT, created_at=start + timedelta(minutes=i))
        for i, job_id in enumerate(ids)
    ]
    oldest_first = [str(job.id) for job in created]

    body = listed(api, tokens.alice, f"sort=status&order={order}")

    expected = oldest_first if order == "asc" else oldest_first[::-1]
    assert [job["id"] for job in body["jobs"]] == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_paging_by_processed_at_shows_every_job_once_the_unprocessed_last(
    api, tokens, order, limit
):
    # Given three processed jobs and four not yet processed
    alice = user(tokens.alice_id)
    start = utcnow() - timedelta(hours=1)
    processed = [
        job_row(alice.id, status=JobStatus.SENT, processed_at=start + timedelta(minutes=i))
        for i in range(3)
    ]
    unprocessed = {str(job_row(alice.id).id) for _ in range(4)}

    # When Alice pages through them by processed_at, ``limit`` at a time, and one page past
    # the end
    seen = []
    for offset in range(0, 7 + limit, limit):
        body = listed(
            api, tokens.alice, f"sort=processed_at&order={order}&limit={limit}&offset={offset}"
        )
        assert body["pagination"]["has_more"] == (offset + limit < 7)
        seen += [job["id"] for job in body["jobs"]]

    # Then each job shows once: the processed ones in order, then the others
    by_time = [str(job.id) for job in processed]
    assert seen[:3] == (by_time if order == "asc" else by_time[::-1])
    assert len(seen) == 7 and set(seen[3:]) == unprocessed


def test_by_default_the_newest_job_comes_first(api, tokens, sortable):
    assert names_in(listed(api, tokens.alice), sortable) == ["e", "d", "c", "b", "a"]


# --- pagination ----------------------------------------------------------------------------


def seven_jobs(owner_id) -> list[str]:
    """Seven jobs of ``owner_id``, their ids newest first (the default order)."""
    start = utcnow() - timedelta(hours=1)
    jobs = [job_row(owner_id, created_at=start + timedelta(minutes=i)) for i in range(7)]
    return [str(job.id) for job in reversed(jobs)]


@pytest.mark.parametrize(
    ("offset", "limit", "page", "has_more"),
    [
        (0, 3, slice(0, 3), True),
        (3, 3, slice(3, 6), True),
        (6, 3, slice(6, 7), False),
        (7, 3, slice(7, 7), False),
        (0, 7, slice(0, 7), False),
        (2, 1, slice(2, 3), True),
    ],
    ids=["first page", "middle page", "last page", "past the end", "exactly all", "one job"],
)
def test_a_page_holds_limit_jobs_from_offset_and_says_whether_more_follow(
    api, tokens, offset, limit, page, has_more
):
    newest_first = seven_jobs(user(tokens.alice_id).id)

    body = listed(api, tokens.alice, f"limit={limit}&offset={offset}")

    assert [job["id"] for job in body["jobs"]] == newest_first[page]
    assert contract_pagination(body) == {
        "total": 7,
        "limit": limit,
        "offset": offset,
        "has_more": has_more,
    }


@pytest.mark.parametrize(("query", "shown"), [("", 50), ("limit=100", 51)])
def test_a_page_holds_50_jobs_by_default_and_up_to_100_when_asked(api, tokens, query, shown):
    alice = user(tokens.alice_id)
    with database.atomic():
        for _ in range(51):
            job_row(alice.id)

    body = listed(api, tokens.alice, query)

    assert len(body["jobs"]) == shown
    assert body["pagination"]["total"] == 51
    assert body["pagination"]["has_more"] is (shown < 51)
