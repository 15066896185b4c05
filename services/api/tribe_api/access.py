"""Who may see what: every read and write of the API goes through these.

A user sees and changes only what they own (recipients, groups, updates, schedules, and the jobs
for their recipients or sent by them); the service role sees everything. Another user's object
answers 404 exactly as a missing one does: nothing reveals that it exists.
"""

from __future__ import annotations

import uuid

import falcon
from peewee import JOIN

from tribe_api.auth import Principal
from tribe_shared.models import NotificationJob, Recipient


def not_found(what: str | None, object_id) -> falcon.HTTPNotFound:
    """A 404 that says which id was not found (``what``: the field or kind it was given as)."""
    label = f" {what}" if what else ""
    return falcon.HTTPNotFound(title="Not found", description=f"No{label} {object_id}")


def owned(model, object_id: uuid.UUID, principal: Principal, field: str = "id"):
    """The caller's object of ``model`` (any for the service role); anything else is a 404.

    ``field`` names the request field the id came from, for the 404's description.
    """
    obj = model.get_or_none(model.id == object_id)
    if obj is None or not (principal.is_service or obj.owner_id == principal.user_id):
        raise not_found(None if field == "id" else field, object_id)
    return obj


def owning_user(principal: Principal, what: str) -> uuid.UUID:
    """The user a new ``what`` will belong to: the caller. The service role's API key acts for
    no user, so what must belong to one cannot be created with it: a 422 that says so."""
    if principal.user_id is None:
        raise falcon.HTTPUnprocessableEntity(
            title="No owning user",
            description=(
                f"A {what} belongs to a user, and this service_role token acts for no user "
                f"(it has no sub): create the {what} with that user's token, or with a "
                "service-role token whose sub is their id"
            ),
        )
    return principal.user_id


def visible(model, principal: Principal):
    """The objects of ``model`` the caller may see, as a query."""
    query = model.select()
    return query if principal.is_service else query.where(model.owner == principal.user_id)


def visible_job(job_id: uuid.UUID, principal: Principal) -> NotificationJob:
    """The job, with its recipient, if the caller may see it; anything else is a 404."""
    job = (
        NotificationJob.select(NotificationJob, Recipient)
        .join(Recipient, JOIN.LEFT_OUTER, on=(NotificationJob.recipient == Recipient.id))
        .where(NotificationJob.id == job_id)
        .first()
    )
    if job is not None and (principal.is_service or job.owner_id == principal.user_id):
        return job
    raise not_found("job", job_id)
