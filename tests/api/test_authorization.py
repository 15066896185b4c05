"""Authorization on every route, with two users: Alice never sees Bob's objects, and any id of
Bob's answers her exactly as an id that does not exist would; the service role sees and acts on
everything. A job is someone's when they sent it or it is for one of their recipients."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.support.family import Family, family, notification_job, recipient_of, update_in
from tests.support.family_api import (
    GROUPS,
    JOBS,
    NOTIFICATIONS,
    RECIPIENTS,
    UPDATES,
    digest_schedule,
    every_row,
    job_path,
    job_row,
    recipient_path,
)
from tests.support.http_assertions import assert_json_error
from tribe_shared.contract import JobStatus
from tribe_shared.models import DigestSchedule, NotificationJob, Update

SCHEDULES = "/api/digest-schedules"


@dataclass
class Household:
    """A parent's family (a group with a recipient), their jobs and an update."""

    family: Family
    #: A queued notification to their recipient.
    job: NotificationJob
    #: A failed notification to their recipient, waiting for a retry.
    failed_job: NotificationJob
    #: An ad-hoc email they sent (no recipient).
    sent_email: NotificationJob
    update: Update
    #: Their recipient's paused digest of their group.
    schedule: DigestSchedule

    @property
    def recipient(self):
        return self.family.recipient

    @property
    def group(self):
        return self.family.group

    @property
    def job_ids(self) -> set[str]:
        return {str(job.id) for job in (self.job, self.failed_job, self.sent_email)}


def household(user_id: uuid.UUID, name: str, email: str) -> Household:
    parent = family(user_id, name=name, email=email)
    return Household(
        family=parent,
        job=notification_job(parent),
        failed_job=notification_job(parent, status=JobStatus.FAILED),
        sent_email=job_row(parent.owner.id, to_email=f"friend-of-{email}"),
        update=update_in(parent.group),
        schedule=digest_schedule(parent.recipient, parent.group, is_active=False),
    )


@pytest.fixture
def alice(tokens) -> Household:
    return household(tokens.alice_id, "Nana", "nana@example.com")


@pytest.fixture
def bob(tokens) -> Household:
    return household(tokens.bob_id, "Grandpa Joe", "joe@example.org")


# --- every route that acts on one object ---------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A request about one object of a household (its ``target``)."""

    method: str
    #: The path, given the caller's own household and the object's id.
    path: Callable[[Household, str], str]
    #: Which object of a household the request is about.
    target: Callable[[Household], object]
    #: The status when the caller may act on the object.
    allowed: int
    #: The body, given the caller's own household and the object's id.
    body: Callable[[Household, str], dict] | None = None


def fixed(path: str) -> Callable[[Household, str], str]:
    """The same path whatever the object (it goes in the body)."""
    return lambda mine, object_id: path


def of(path: Callable[[str], str]) -> Callable[[Household, str], str]:
    """The path of the object itself."""
    return lambda mine, object_id: path(object_id)


def notification(recipient, group, update=None) -> dict:
    body = {"recipient_id": str(recipient), "group_id": str(group), "content": {"title": "Hi"}}
    if update is not None:
        body["update_id"] = str(update)
    return body


ROUTES = {
    "GET /api/jobs/{id}": Route("GET", of(job_path), lambda h: h.job.id, 200),
    "DELETE /api/jobs/{id}": Route("DELETE", of(job_path), lambda h: h.job.id, 200),
    "POST /api/jobs/{id}/retry": Route(
        "POST", of(lambda job_id: f"{job_path(job_id)}/retry"), lambda h: h.failed_job.id, 202
    ),
    "GET /api/recipients/{id}": Route("GET", of(recipient_path), lambda h: h.recipient.id, 200),
    "PATCH /api/recipients/{id}": Route(
        "PATCH",
        of(recipient_path),
        lambda h: h.recipient.id,
        200,
        body=lambda mine, _: {"name": "Renamed"},
    ),
    "DELETE /api/recipients/{id}": Route(
        "DELETE", of(recipient_path), lambda h: h.recipient.id, 200
    ),
    "PATCH /api/recipients/{id} into a group": Route(
        "PATCH",
        lambda mine, group: recipient_path(mine.recipient.id),
        lambda h: h.group.id,
        200,
        body=lambda mine, group: {"group_ids": [group]},
    ),
    "POST /api/recipients into a group": Route(
        "POST",
        fixed(RECIPIENTS),
        lambda h: h.group.id,
        201,
        body=lambda mine, group: {"name": "New", "phone": "+14155550100", "group_ids": [group]},
    ),
    "GET /api/recipients of a group": Route(
        "GET", lambda mine, group: f"{RECIPIENTS}?group_id={group}", lambda h: h.group.id, 200
    ),
    "POST /api/updates to a group": Route(
        "POST",
        fixed(UPDATES),
        lambda h: h.group.id,
        202,
        body=lambda mine, group: {"group_id": group, "content_type": "text", "title": "Hi"},
    ),
    "POST /api/notifications to a recipient": Route(
        "POST",
        fixed(NOTIFICATIONS),
        lambda h: h.recipient.id,
        202,
        body=lambda mine, recipient: notification(recipient, mine.group.id),
    ),
    "POST /api/notifications in a group": Route(
        "POST",
        fixed(NOTIFICATIONS),
        lambda h: h.group.id,
        202,
        body=lambda mine, group: notification(mine.recipient.id, group),
    ),
    "GET /api/jobs of a recipient": Route(
        "GET", lambda mine, rid: f"{JOBS}?recipient_id={rid}", lambda h: h.recipient.id, 200
    ),
    "GET /api/jobs in a group": Route(
        "GET", lambda mine, group: f"{JOBS}?group_id={group}", lambda h: h.group.id, 200
    ),
    "GET /api/digest-schedules/{id}": Route(
        "GET", of(lambda sid: f"{SCHEDULES}/{sid}"), lambda h: h.schedule.id, 200
    ),
    "PATCH /api/digest-schedules/{id}": Route(
        "PATCH",
        of(lambda sid: f"{SCHEDULES}/{sid}"),
        lambda h: h.schedule.id,
        200,
        body=lambda mine, _: {"max_updates_per_digest": 5},
    ),
    "DELETE /api/digest-schedules/{id}": Route(
        "DELETE", of(lambda sid: f"{SCHEDULES}/{sid}"), lambda h: h.schedule.id, 200
    ),
    "POST /api/digest-schedules for a recipient": Route(
        "POST",
        fixed(SCHEDULES),
        lambda h: h.recipient.id,
        201,
        body=lambda mine, recipient: schedule_body(recipient, mine.group.id),
    ),
    "POST /api/digest-schedules of a group": Route(
        "POST",
        fixed(SCHEDULES),
        lambda h: h.group.id,
        201,
        body=lambda mine, group: schedule_body(mine.recipient.id, group),
    ),
    "GET /api/digest-schedules of a recipient": Route(
        "GET", lambda mine, rid: f"{SCHEDULES}?recipient_id={rid}", lambda h: h.recipient.id, 200
    ),
    "POST /api/notifications about an update": Route(
        "POST",
        fixed(NOTIFICATIONS),
        lambda h: h.update.id,
        202,
        body=lambda mine, update: notification(mine.recipient.id, mine.group.id, update),
    ),
}

routes = pytest.mark.parametrize("route", list(ROUTES.values()), ids=list(ROUTES))


def schedule_body(recipient, group) -> dict:
    """A weekly digest: the household's own paused daily one stays for the other routes."""
    DigestSchedule.delete().where(
        DigestSchedule.recipient == recipient, DigestSchedule.group == group
    ).execute()
    return {
        "recipient_id": str(recipient),
        "group_id": str(group),
        "frequency": "weekly",
        "delivery_day": 1,
        "delivery_time": "08:00",
        "timezone": "Europe/Paris",
    }


def call(api, headers, mine: Household, route: Route, object_id):
    """``route`` about ``object_id``, by the caller whose own household is ``mine``."""
    object_id = str(object_id)
    body = route.body(mine, object_id) if route.body else None
    path = route.path(mine, object_id)
    return api.simulate_request(route.method, path, json=body, headers=headers)


@routes
def test_alice_may_act_on_her_own_objects(api, tokens, alice, bob, route):
    response = call(api, tokens.alice, alice, route, route.target(alice))

    assert response.status_code == route.allowed, response.text


@routes
def test_bobs_object_answers_alice_as_a_missing_one_would_and_stays_untouched(
    api, tokens, alice, bob, route
):
    bobs, missing = str(route.target(bob)), str(uuid.uuid4())
    before = every_row()

    theirs = call(api, tokens.alice, alice, route, bobs)
    nobodys = call(api, tokens.alice, alice, route, missing)

    as_if_missing = {
        key: value.replace(missing, bobs) for key, value in assert_json_error(nobodys, 404).items()
    }
    assert assert_json_error(theirs, 404) == as_if_missing
    for secret in ("Grandpa Joe", "joe@example.org", "queued", "failed"):
        assert secret not in theirs.text
    assert every_row() == before


@routes
def test_the_service_role_may_act_on_anyones_objects(api, tokens, alice, bob, route):
    response = call(api, tokens.service, bob, route, route.target(bob))

    assert response.status_code == route.allowed, response.text


#: What needs an owning user, which the service role's key (no ``sub``) does not have.
NEEDS_AN_OWNER = {"POST /api/recipients into a group"}


@pytest.mark.parametrize(
    "route",
    [route for name, route in ROUTES.items() if name not in NEEDS_AN_OWNER],
    ids=[name for name in ROUTES if name not in NEEDS_AN_OWNER],
)
def test_the_service_role_key_acting_for_no_user_may_act_on_anyones_objects(
    api, tokens, alice, bob, route
):
    response = call(api, tokens.service_key, bob, route, route.target(bob))

    assert response.status_code == route.allowed, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (GROUPS, {"name": "Grandparents"}),
        (RECIPIENTS, {"name": "Nana", "email": "nana@example.com"}),
    ],
    ids=["group", "recipient"],
)
def test_creating_what_must_belong_to_a_user_with_the_service_role_key_is_a_422_saying_why(
    api, tokens, alice, path, body
):
    # Given nothing but what the households hold
    before = every_row()

    # When the service role's key, which acts for no user, creates a group or a recipient
    response = api.simulate_post(path, json=body, headers=tokens.service_key)

    # Then it is refused as unprocessable, saying why and how, and nothing was written
    description = assert_json_error(response, 422)["description"]
    assert "acts for no user" in description and "sub" in description
    assert every_row() == before


def test_an_email_sent_with_the_service_role_key_belongs_to_no_user(api, tokens, alice):
    response = api.simulate_post(
        "/api/notifications/send-email",
        json={"to": "welcome@example.org", "type": "welcome", "templateData": {"name": "Ann"}},
        headers=tokens.service_key,
    )
    assert response.status_code == 202, response.text
    job_id = response.json["jobId"]

    assert NotificationJob.get_by_id(job_id).owner_id is None
    assert api.simulate_get(job_path(job_id), headers=tokens.service_key).status_code == 200
    assert_json_error(api.simulate_get(job_path(job_id), headers=tokens.alice), 404)
    assert job_id not in listed_ids(api, tokens.alice, JOBS, "jobs")


# --- what the lists show -------------------------------------------------------------------


def listed_ids(api, headers, path, key, query="") -> set[str]:
    response = api.simulate_get(path, query_string=query, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json[key]}


LISTS = {
    "jobs": (JOBS, "jobs", lambda h: h.job_ids),
    "recipients": (RECIPIENTS, "recipients", lambda h: {str(h.recipient.id)}),
    "groups": (GROUPS, "groups", lambda h: {str(h.group.id)}),
    "digest schedules": (SCHEDULES, "digest_schedules", lambda h: {str(h.schedule.id)}),
}
lists = pytest.mark.parametrize("listing", list(LISTS.values()), ids=list(LISTS))


@lists
def test_each_user_lists_only_their_own_objects(api, tokens, alice, bob, listing):
    path, key, ids_of = listing

    assert listed_ids(api, tokens.alice, path, key) == ids_of(alice)
    assert listed_ids(api, tokens.bob, path, key) == ids_of(bob)


@lists
@pytest.mark.parametrize("credential", ["service", "service_key"])
def test_the_service_role_lists_everyones_objects(api, tokens, alice, bob, listing, credential):
    path, key, ids_of = listing
    headers = getattr(tokens, credential)

    assert listed_ids(api, headers, path, key) >= ids_of(alice) | ids_of(bob)


# --- whose job it is -----------------------------------------------------------------------


def test_a_job_the_service_role_queued_for_alices_recipient_is_hers_and_not_bobs(
    api, tokens, alice, bob
):
    response = api.simulate_post(
        NOTIFICATIONS,
        json=notification(alice.recipient.id, alice.group.id),
        headers=tokens.service,
    )
    assert response.status_code == 202, response.text
    job_id = response.json["jobId"]

    assert job_id in listed_ids(api, tokens.alice, JOBS, "jobs")
    assert job_id not in listed_ids(api, tokens.bob, JOBS, "jobs")
    assert api.simulate_get(job_path(job_id), headers=tokens.alice).status_code == 200
    assert_json_error(api.simulate_get(job_path(job_id), headers=tokens.bob), 404)
    assert api.simulate_delete(job_path(job_id), headers=tokens.alice).status_code == 200


def test_an_email_alice_sent_is_hers_and_not_bobs(api, tokens, alice, bob):
    recipient_of(alice.family.owner, email="friend@example.org")
    response = api.simulate_post(
        "/api/notifications/send-email",
        json={"to": "friend@example.org", "type": "system", "templateData": {"title": "Hi"}},
        headers=tokens.alice,
    )
    job_id = response.json["jobId"]

    assert job_id in listed_ids(api, tokens.alice, JOBS, "jobs")
    assert job_id not in listed_ids(api, tokens.bob, JOBS, "jobs")
    assert_json_error(api.simulate_get(job_path(job_id), headers=tokens.bob), 404)
