"""``/api/unsubscribe/{token}``: one-click unsubscribe (RFC 8058) and its pages.

No bearer token: the signed token in the URL is the authority (:mod:`tribe_shared.unsubscribe`).

- ``POST /api/unsubscribe/{token}`` as a mail provider sends it (``List-Unsubscribe=One-Click``,
  form-encoded, no cookies) or as the page's button does: unsubscribes at once, 200, no
  redirect. ``scope=all`` (the page's second button) stops all Tribe email to the address.
- ``GET /api/unsubscribe/{token}``: a page saying what will happen, with the button; never
  changes anything (mail scanners open links).
- ``POST /api/unsubscribe/{token}/undo``: back again.

A forged, altered or expired token, or one for a recipient that no longer exists, gets a page
saying so and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import falcon
import falcon.media
from spectree import Response

from tribe_api import unsubscribing
from tribe_api.pages import render_page
from tribe_api.spec import spec
from tribe_shared.contract import SuppressionReason
from tribe_shared.unsubscribe import BadToken, ExpiredToken, Scope, UnsubscribeTokens

#: The one body this API takes that is not JSON: RFC 8058's form.
_FORM = falcon.media.URLEncodedFormHandler()
_WHY = {
    SuppressionReason.BOUNCED: "emails to it bounced",
    SuppressionReason.INVALID: "it was found to be invalid",
    SuppressionReason.COMPLAINED: "an email to it was reported as spam",
    SuppressionReason.BLOCKED: "emails to it were blocked again and again",
}
#: Pages: 200, or the page of a link that does nothing (400 forged or altered, 404 the recipient
#: is gone, 410 expired). 413 and 503 are the API's usual JSON.
_PAGES = dict.fromkeys(("HTTP_200", "HTTP_400", "HTTP_404", "HTTP_410", "HTTP_413", "HTTP_503"))


def _form(req) -> dict:
    """The form body (RFC 8058's ``List-Unsubscribe=One-Click``, the page's ``scope``); none is
    an empty form. Anything but a form is a 415."""
    if not req.content_length:
        return {}
    if req.content_type and not req.content_type.startswith(falcon.MEDIA_URLENCODED):
        raise falcon.HTTPUnsupportedMediaType(
            title="Unsupported media type",
            description="This route takes application/x-www-form-urlencoded (RFC 8058)",
            code="unsupported_media_type",
        )
    return _FORM.deserialize(req.bounded_stream, req.content_type, req.content_length)


class _Pages:
    auth_required = False

    def __init__(self, tokens: UnsubscribeTokens, clock: Callable[[], datetime]):
        self._tokens = tokens
        self._clock = clock

    def _standing(self, resp, token: str):
        """(token, standing), or None after answering with the page of a link that does
        nothing."""
        try:
            read = self._tokens.read(token, self._clock())
        except ExpiredToken:
            return self._dead(resp, falcon.HTTP_410, "expired", "This link has expired",
                              "Unsubscribe links work for six months.")  # fmt: skip
        except BadToken:
            return self._dead(resp, falcon.HTTP_400, "invalid", "This link is not valid",
                              "It may have been cut short or changed on its way here.")  # fmt: skip
        found = unsubscribing.standing(read.recipient_id, read.group_id)
        if found is None:
            return self._dead(resp, falcon.HTTP_404, "gone", "Nothing to unsubscribe from",
                              "This address is no longer on anyone's list on Tribe.")  # fmt: skip
        return read, found

    def _dead(self, resp, status, state, heading, message):
        render_page(resp, "unsubscribe.html", status, state=state, heading=heading,
                    message=message)  # fmt: skip
        return None

    def _show(self, resp, token: str, found: unsubscribing.Standing, state: str | None = None):
        action = f"/api/unsubscribe/{token}"
        if state is None:
            state = "confirm"
            if found.suppressed_reason:
                state = "suppressed"
            elif found.unsubscribed:
                state = "unsubscribed"
        reason = found.suppressed_reason
        render_page(
            resp,
            "unsubscribe.html",
            state=state,
            family=found.family,
            address=found.recipient.email or "",
            action=action,
            undo=f"{action}/undo",
            undoable=reason == SuppressionReason.UNSUBSCRIBED,
            why=_WHY.get(reason, "of an earlier problem"),
        )


class UnsubscribeResource(_Pages):
    @spec.validate(resp=Response(**_PAGES), tags=["unsubscribe"], security={})
    def on_get(self, req, resp, token: str):
        """The unsubscribe page (HTML): what the link will do, and its button. Changes
        nothing."""
        found = self._standing(resp, token)
        if found is not None:
            self._show(resp, token, found[1])

    @spec.validate(resp=Response(HTTP_415=None, **_PAGES), tags=["unsubscribe"],
                   security={})  # fmt: skip
    def on_post(self, req, resp, token: str):
        """One-click unsubscribe (RFC 8058): the body ``List-Unsubscribe=One-Click``
        (``application/x-www-form-urlencoded``) as a mail provider posts it, or the page's
        button; ``scope=all`` stops all Tribe email. 200 and a page, never a redirect."""
        form = _form(req)
        found = self._standing(resp, token)
        if found is None:
            return
        read, standing = found
        now = self._clock()
        if form.get("scope") == Scope.ALL or read.scope == Scope.ALL or read.group_id is None:
            unsubscribing.leave_all(standing.recipient, now)
        else:
            unsubscribing.leave_group(read.recipient_id, read.group_id, "one-click", now)
        self._show(resp, token, unsubscribing.standing(read.recipient_id, read.group_id))


class UnsubscribeUndoResource(_Pages):
    @spec.validate(resp=Response(HTTP_415=None, **_PAGES), tags=["unsubscribe"],
                   security={})  # fmt: skip
    def on_post(self, req, resp, token: str):
        """Undo an unsubscribe made with this link (``scope=all``: the stop of all Tribe
        email; a suppression for a bounce or a spam report stays)."""
        form = _form(req)
        found = self._standing(resp, token)
        if found is None:
            return
        read, standing = found
        now = self._clock()
        if form.get("scope") == Scope.ALL or read.scope == Scope.ALL or read.group_id is None:
            unsubscribing.rejoin_all(standing.recipient)
        else:
            unsubscribing.rejoin_group(read.recipient_id, read.group_id, now)
        standing = unsubscribing.standing(read.recipient_id, read.group_id)
        state = None if standing.suppressed_reason else "resubscribed"
        self._show(resp, token, standing, state)
