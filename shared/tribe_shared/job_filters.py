"""Which jobs a filter matches: one home for the job list (``GET /api/jobs``), the bulk actions
(``POST /api/jobs/retry`` and ``/cancel``, run by the worker) and the console's pages.

A filter is plain data (a dict of the fields below, as JSON carries it), so the API can store it
with a bulk action and the worker read it back. Each field narrows the match; None (or absent)
matches any. Every equality field reads through an index of ``notification_jobs`` (migrations
0004-0011): status, delivery method, notification type, recipient, group, update, delivery
outcome, the originating request and the address each have one that starts with them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from peewee import Tuple

from tribe_shared.models import NotificationJob

#: Each equality filter: its name (as the API and the console spell it) and the job's field.
EQUALITY_FILTERS = {
    "status": NotificationJob.status,
    "kind": NotificationJob.kind,
    "delivery_method": NotificationJob.delivery_method,
    "notification_type": NotificationJob.notification_type,
    "recipient_id": NotificationJob.recipient,
    "group_id": NotificationJob.group,
    "update_id": NotificationJob.family_update,
    "delivery_outcome": NotificationJob.delivery_outcome,
    #: The originating request: a bulk request's jobs share its ``X-Request-ID``.
    "request_id": NotificationJob.request_id,
    "to": NotificationJob.to_email,
}
#: The range filters: jobs created at or after, and before, an instant.
RANGE_FILTERS = ("created_after", "created_before")
#: Every filter's name.
FILTER_NAMES = (*EQUALITY_FILTERS, *RANGE_FILTERS)
#: Filters holding a job's reference (a UUID).
UUID_FILTERS = ("recipient_id", "group_id", "update_id")


def condition(filters: dict):
    """The peewee condition of ``filters`` (None: every job)."""
    parts = []
    for name, field in EQUALITY_FILTERS.items():
        value = filters.get(name)
        if value is None:
            continue
        if name == "to":
            value = str(value).strip()
        parts.append(field == value)
    if filters.get("created_after") is not None:
        parts.append(NotificationJob.created_at >= filters["created_after"])
    if filters.get("created_before") is not None:
        parts.append(NotificationJob.created_at < filters["created_before"])
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined &= part
    return combined


def matching(query, filters: dict):
    """``query`` narrowed to the jobs ``filters`` match."""
    where = condition(filters)
    return query if where is None else query.where(where)


def to_json(filters: dict) -> dict:
    """The filters that are set, as JSON holds them (ids and instants as text)."""
    stored = {}
    for name in FILTER_NAMES:
        value = filters.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        stored[name] = value
    return stored


def from_json(stored: dict) -> dict:
    """Filters stored by :func:`to_json`, ready for :func:`condition`."""
    filters = dict(stored)
    for name in RANGE_FILTERS:
        if isinstance(filters.get(name), str):
            filters[name] = datetime.fromisoformat(filters[name])
    for name in UUID_FILTERS:
        if isinstance(filters.get(name), str):
            filters[name] = uuid.UUID(filters[name])
    return filters


def after_key(query, created_at: datetime, job_id: uuid.UUID, descending: bool):
    """Keyset pagination over the ``(created_at, id)`` order: the jobs after the one given
    (row values compare in index order, so a page at any depth reads only its own rows)."""
    key = Tuple(NotificationJob.created_at, NotificationJob.id)
    mark = Tuple(
        NotificationJob.created_at.db_value(created_at), NotificationJob.id.db_value(job_id)
    )
    return query.where(key < mark if descending else key > mark)
