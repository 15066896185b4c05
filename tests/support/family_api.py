"""Groups and recipients made through the API, and what the API cannot make (digest schedules,
jobs at a given time), for the tests of the family and job routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from tribe_shared.contract import DeliveryMethod, JobKind, JobStatus, NotificationType
from tribe_shared.models import ALL_MODELS, DigestSchedule, Group, NotificationJob, Recipient

GROUPS = "/api/groups"
RECIPIENTS = "/api/recipients"
UPDATES = "/api/updates"
NOTIFICATIONS = "/api/notifications"
JOBS = "/api/jobs"


def recipient_path(recipient_id) -> str:
    return f"{RECIPIENTS}/{recipient_id}"


def job_path(job_id) -> str:
    return f"{JOBS}/{job_id}"


def group_counts(api, headers) -> dict[str, int]:
    """Each of the caller's groups, by id, with its number of recipients."""
    response = api.simulate_get(GROUPS, headers=headers)
    assert response.status_code == 200, response.text
    return {group["id"]: group["recipient_count"] for group in response.json["groups"]}


def create_group(api, headers, name: str = "Grandparents") -> dict:
    response = api.simulate_post(GROUPS, json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json


def create_recipient(api, headers, **fields) -> dict:
    """A recipient named Nana with an email address, unless ``fields`` say otherwise."""
    body = {"name": "Nana", "email": "nana@example.com", **fields}
    response = api.simulate_post(RECIPIENTS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json


def digest_schedule(recipient: Recipient, group: Group, *, is_active: bool = True):
    """A daily 09:00 UTC digest of ``group`` for ``recipient`` (no API for schedules here)."""
    return DigestSchedule.create(
        id=uuid.uuid4(),
        owner=recipient.owner_id,
        recipient=recipient.id,
        group=group.id,
        frequency="daily",
        delivery_time="09:00:00",
        timezone="UTC",
        is_active=is_active,
    )


def job_row(created_by, **fields) -> NotificationJob:
    """A job ``created_by`` a user, ``queued`` immediate email unless ``fields`` say otherwise.

    Owned as the API would own it: by its recipient's owner, else by whoever sent it.
    """
    recipient = fields.get("recipient")
    owner = Recipient.get_by_id(recipient).owner_id if recipient is not None else created_by
    defaults = {
        "owner": owner,
        "id": uuid.uuid4(),
        "kind": JobKind.EMAIL,
        "status": JobStatus.QUEUED,
        "created_by": created_by,
        "to_email": "nana@example.com",
        "notification_type": NotificationType.IMMEDIATE,
        "delivery_method": DeliveryMethod.EMAIL,
    }
    return NotificationJob.create(**{**defaults, **fields})


def every_row() -> dict[str, list[dict]]:
    """Every row of every table, to prove a refused request changed nothing."""
    return {
        model.__name__: sorted(model.select().dicts(), key=lambda row: str(row["id"]))
        for model in ALL_MODELS
    }


def iso(moment: datetime) -> str:
    """How the API writes a UTC datetime."""
    return moment.isoformat().replace("+00:00", "Z")


def post_update(api, headers, group, **fields):
    body = {"group_id": str(group.id), "content_type": "text", "title": "First steps", **fields}
    response = api.simulate_post(UPDATES, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json
