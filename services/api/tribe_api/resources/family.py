"""Groups, recipients and updates: ``/api/groups``, ``/api/recipients``, ``/api/updates``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import falcon
from spectree import Response

from tribe_api import family
from tribe_api.access import owned
from tribe_api.errors import unprocessable
from tribe_api.schemas.errors import Error
from tribe_api.schemas.family import (
    GroupCreate,
    GroupList,
    GroupOut,
    GroupPatch,
    RecipientCreate,
    RecipientDeleted,
    RecipientList,
    RecipientOut,
    RecipientPatch,
    RecipientQuery,
    UpdateCreate,
    UpdatePosted,
)
from tribe_api.spec import errors, spec
from tribe_api.updates import UpdatePoster
from tribe_shared.contract import JobStatus
from tribe_shared.models import Recipient


def present_group(group, recipient_count: int) -> dict:
    return {
        "id": group.id,
        "name": group.name,
        "family_name": group.family_name,
        "ai_summary": group.ai_summary,
        "recipient_count": recipient_count,
        "created_at": group.created_at,
    }


def present_recipients(recipients: list[Recipient]) -> list[dict]:
    groups = family.group_ids_of(recipients)
    left = family.unsubscribed_group_ids_of(recipients)
    suppressed = family.suppressions_of(recipients)
    channels = family.channels_of(recipients)
    return [
        {
            "id": r.id,
            "name": r.name,
            "email": r.email,
            "phone": r.phone,
            "relationship": r.relationship,
            "group_ids": groups[r.id],
            "muted_until": r.muted_until,
            "locale": r.locale,
            "created_at": r.created_at,
            "email_suppressed": suppressed.get((r.email or "").strip().lower()),
            "unsubscribed_group_ids": left[r.id],
            "group_channels": channels[r.id],
        }
        for r in recipients
    ]


class GroupsResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(resp=Response(HTTP_200=GroupList, **errors()), tags=["family"])
    def on_get(self, req, resp):
        """The caller's groups (every group for the service role)."""
        groups = family.list_groups(req.context.principal)
        resp.media = {"groups": [present_group(g, n) for g, n in groups]}

    @spec.validate(
        json=GroupCreate,
        resp=Response(HTTP_201=GroupOut, HTTP_422=Error, **errors(body=True, write=True)),
        tags=["family"],
    )
    def on_post(self, req, resp, json: GroupCreate):
        """Create a group (a circle of recipients: grandparents, friends...) of the caller's.

        The service role's key acts for no user: 422 (use the user's token).
        """
        group = family.create_group(
            req.context.principal,
            json.name,
            self._clock(),
            family_name=json.family_name,
            ai_summary=json.ai_summary,
        )
        resp.status = falcon.HTTP_201
        resp.location = f"/api/groups/{group.id}"
        resp.media = present_group(group, 0)


class GroupResource:
    @spec.validate(resp=Response(HTTP_200=GroupOut, HTTP_404=Error, **errors()), tags=["family"])
    def on_get(self, req, resp, group_id: UUID):
        """One of the caller's groups, with its number of recipients."""
        group, recipient_count = family.get_group(req.context.principal, group_id)
        resp.media = present_group(group, recipient_count)

    @spec.validate(
        json=GroupPatch,
        resp=Response(HTTP_200=GroupOut, HTTP_404=Error, **errors(body=True, write=True)),
        tags=["family"],
    )
    def on_patch(self, req, resp, group_id: UUID, json: GroupPatch):
        """Change the group: ``ai_summary`` opts its digests in to (or out of) AI summaries."""
        changes = json.model_dump(exclude_unset=True)
        group, recipient_count = family.update_group(req.context.principal, group_id, changes)
        resp.media = present_group(group, recipient_count)


class RecipientsResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(
        query=RecipientQuery,
        resp=Response(HTTP_200=RecipientList, HTTP_404=Error, **errors()),
        tags=["family"],
    )
    def on_get(self, req, resp, query: RecipientQuery):
        """The caller's recipients, optionally of one of their groups (another's is a 404)."""
        recipients = family.list_recipients(req.context.principal, query.group_id)
        resp.media = {"recipients": present_recipients(recipients)}

    @spec.validate(
        json=RecipientCreate,
        resp=Response(
            HTTP_201=RecipientOut, HTTP_404=Error, HTTP_422=Error, **errors(body=True, write=True)
        ),
        tags=["family"],
    )
    def on_post(self, req, resp, json: RecipientCreate):
        """Add a recipient of the caller's, optionally to groups of theirs.

        The service role's key acts for no user: 422 (use the user's token).
        """
        fields = json.model_dump()
        fields["email"] = str(json.email) if json.email else None
        recipient = family.create_recipient(req.context.principal, fields, self._clock())
        resp.status = falcon.HTTP_201
        resp.location = f"/api/recipients/{recipient.id}"
        resp.media = present_recipients([recipient])[0]


class RecipientResource:
    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    @spec.validate(
        resp=Response(HTTP_200=RecipientOut, HTTP_404=Error, **errors()), tags=["family"]
    )
    def on_get(self, req, resp, recipient_id: UUID):
        recipient = owned(Recipient, recipient_id, req.context.principal)
        resp.media = present_recipients([recipient])[0]

    @spec.validate(
        json=RecipientPatch,
        resp=Response(
            HTTP_200=RecipientOut,
            HTTP_404=Error,
            HTTP_422=Error,
            **errors(body=True, write=True),
        ),
        tags=["family"],
    )
    def on_patch(self, req, resp, recipient_id: UUID, json: RecipientPatch):
        """Change the fields given; ``muted_until: null`` unmutes."""
        principal = req.context.principal
        recipient = owned(Recipient, recipient_id, principal)
        changes = json.model_dump(exclude_unset=True)
        if changes.get("name", "") is None:
            raise unprocessable("name", "A recipient needs a name")
        if "email" in changes and changes["email"] is not None:
            changes["email"] = str(json.email)
        recipient = family.update_recipient(recipient, principal, changes, self._clock())
        resp.media = present_recipients([recipient])[0]

    @spec.validate(
        resp=Response(HTTP_200=RecipientDeleted, HTTP_404=Error, **errors(write=True)),
        tags=["family"],
    )
    def on_delete(self, req, resp, recipient_id: UUID):
        """Delete a recipient; their jobs not yet started are cancelled."""
        recipient = owned(Recipient, recipient_id, req.context.principal)
        cancelled = family.delete_recipient(recipient, self._clock())
        resp.media = {"deleted": True, "cancelled_jobs": cancelled}


class UpdatesResource:
    #: A POST with an ``Idempotency-Key`` is safe to retry (:mod:`tribe_api.idempotency`).
    idempotent = True

    def __init__(self, poster: UpdatePoster):
        self._poster = poster

    @spec.validate(
        json=UpdateCreate,
        resp=Response(
            # 422: an Idempotency-Key reused with another request.
            HTTP_202=UpdatePosted,
            HTTP_404=Error,
            HTTP_422=Error,
            **errors(body=True, write=True),
        ),
        tags=["family"],
    )
    def on_post(self, req, resp, json: UpdateCreate):
        """Post an update to a group: recipients without a digest for it are notified at once."""
        fan_out = self._poster.post(
            req.context.principal, json.model_dump(), req.context.request_id
        )
        update = fan_out.update
        queued = sum(1 for job in fan_out.jobs if job.status == JobStatus.QUEUED)
        resp.status = falcon.HTTP_202
        resp.media = {
            "success": True,
            "update": {
                "id": update.id,
                "group_id": update.group_id,
                "content_type": update.content_type,
                "title": update.title,
                "body": update.body,
                "media_urls": update.media_urls,
                "created_at": update.created_at,
            },
            "notifications": {
                "queued": queued,
                "pending": len(fan_out.jobs) - queued,
                "in_digest": fan_out.in_digest,
                "muted": fan_out.muted,
                "unreachable": fan_out.unreachable,
                "unsubscribed": fan_out.unsubscribed,
            },
            "message": f"Update posted; {len(fan_out.jobs)} recipient(s) notified now",
        }
