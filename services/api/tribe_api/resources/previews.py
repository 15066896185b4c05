"""Previews: ``POST /api/templates/{type}/preview`` and
``GET /api/digest-schedules/{id}/preview`` ("see what Grandma gets")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from spectree import Response

from tribe_api import previews
from tribe_api.access import owned
from tribe_api.schemas.errors import Error
from tribe_api.schemas.previews import DigestPreviewOut, TemplatePreviewIn, TemplatePreviewOut
from tribe_api.spec import errors, spec
from tribe_shared.models import DigestSchedule

TAGS = ["previews"]


class TemplatePreviewResource:
    @spec.validate(
        json=TemplatePreviewIn,
        resp=Response(
            HTTP_200=TemplatePreviewOut,
            HTTP_404=Error,
            HTTP_422=Error,
            **errors(body=True, write=True),
        ),
        tags=TAGS,
    )
    def on_post(self, req, resp, email_type: str, json: TemplatePreviewIn):
        """Render an email type (`welcome`, `system`, `notification`, `digest`) with the given
        `templateData`, in the `locale`'s language; nothing is stored or sent."""
        resp.media = previews.preview_template(email_type, json.model_dump())


class DigestPreviewResource:
    def __init__(self, links: previews.EmailLinks, clock: Callable[[], datetime]):
        self._links = links
        self._clock = clock

    @spec.validate(resp=Response(HTTP_200=DigestPreviewOut, HTTP_404=Error, **errors()), tags=TAGS)
    def on_get(self, req, resp, schedule_id: UUID):
        """The schedule's next digest as it would be sent if it were built now (HTML and text),
        or why none would be; nothing is sent, and the schedule does not move."""
        schedule = owned(DigestSchedule, schedule_id, req.context.principal)
        resp.media = previews.preview_digest(schedule, self._links, self._clock())
