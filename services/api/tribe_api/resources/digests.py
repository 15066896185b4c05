"""Digest schedules: ``/api/digest-schedules`` and ``/api/digest-schedules/{id}``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import falcon
from spectree import Response

from tribe_api import digests
from tribe_api.access import owned
from tribe_api.schemas.digests import (
    DigestScheduleCreate,
    DigestScheduleDeleted,
    DigestScheduleList,
    DigestScheduleOut,
    DigestSchedulePatch,
    DigestScheduleQuery,
)
from tribe_api.schemas.errors import Error
from tribe_api.spec import errors, spec
from tribe_shared.models import DigestSchedule

TAGS = ["digests"]


def present_schedule(schedule: DigestSchedule) -> dict:
    return {
        "id": schedule.id,
        "recipient_id": schedule.recipient_id,
        "group_id": schedule.group_id,
        "frequency": schedule.frequency,
        "delivery_time": schedule.delivery_time,
        "delivery_day": schedule.delivery_day,
        "timezone": schedule.timezone,
        "is_active": schedule.is_active,
        "max_updates_per_digest": schedule.max_updates_per_digest,
        "include_content_types": schedule.include_content_types,
        "last_digest_sent": schedule.last_digest_sent,
        "next_digest_scheduled": schedule.next_digest_scheduled,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


class DigestSchedulesResource:
    #: A POST with an ``Idempotency-Key`` is safe to retry (:mod:`tribe_api.idempotency`).
    idempotent = True

    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(
        query=DigestScheduleQuery,
        resp=Response(HTTP_200=DigestScheduleList, HTTP_404=Error, **errors()),
        tags=TAGS,
    )
    def on_get(self, req, resp, query: DigestScheduleQuery):
        """The caller's digest schedules, oldest first, optionally filtered."""
        schedules = digests.list_schedules(req.context.principal, query.model_dump())
        resp.media = {"digest_schedules": [present_schedule(s) for s in schedules]}

    @spec.validate(
        json=DigestScheduleCreate,
        resp=Response(
            HTTP_201=DigestScheduleOut,
            HTTP_404=Error,
            HTTP_409=Error,
            HTTP_422=Error,
            **errors(body=True, write=True),
        ),
        tags=TAGS,
    )
    def on_post(self, req, resp, json: DigestScheduleCreate):
        """Give a recipient a digest of a group's updates instead of an email per update."""
        schedule = digests.create_schedule(req.context.principal, json.model_dump(), self._clock())
        resp.status = falcon.HTTP_201
        resp.location = f"/api/digest-schedules/{schedule.id}"
        resp.media = present_schedule(schedule)


class DigestScheduleResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(resp=Response(HTTP_200=DigestScheduleOut, HTTP_404=Error, **errors()), tags=TAGS)
    def on_get(self, req, resp, schedule_id: UUID):
        schedule = owned(DigestSchedule, schedule_id, req.context.principal)
        resp.media = present_schedule(schedule)

    @spec.validate(
        json=DigestSchedulePatch,
        resp=Response(
            HTTP_200=DigestScheduleOut,
            HTTP_404=Error,
            HTTP_422=Error,
            **errors(body=True, write=True),
        ),
        tags=TAGS,
    )
    def on_patch(self, req, resp, schedule_id: UUID, json: DigestSchedulePatch):
        """Change the fields given; ``is_active: false`` pauses, ``true`` resumes from now."""
        schedule = owned(DigestSchedule, schedule_id, req.context.principal)
        changes = json.model_dump(exclude_unset=True)
        resp.media = present_schedule(digests.update_schedule(schedule, changes, self._clock()))

    @spec.validate(
        resp=Response(HTTP_200=DigestScheduleDeleted, HTTP_404=Error, **errors(write=True)),
        tags=TAGS,
    )
    def on_delete(self, req, resp, schedule_id: UUID):
        """Delete a schedule; its digests not yet started are cancelled."""
        schedule = owned(DigestSchedule, schedule_id, req.context.principal)
        cancelled = digests.delete_schedule(schedule, self._clock())
        resp.media = {"deleted": True, "cancelled_jobs": cancelled}
