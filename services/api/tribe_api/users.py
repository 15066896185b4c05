"""Every caller has a ``users`` row: what they create is owned by it.

Tribe's users live in its Supabase project; this service learns of one from the ``sub`` of their
first token. :class:`RecordCallers` writes the row on a caller's first authenticated request
(an ``INSERT`` that does nothing if the row exists), once per process. The service role's API
key acts for no user and has none.
"""

from __future__ import annotations

import uuid

from tribe_shared.models import User


class RecordCallers:
    """Falcon middleware; runs after authentication (it reads ``req.context.principal``)."""

    def __init__(self) -> None:
        self._known: set[uuid.UUID] = set()

    def process_resource(self, req, resp, resource, params):
        principal = getattr(req.context, "principal", None)
        if principal is None or principal.user_id is None or principal.user_id in self._known:
            return
        User.insert(id=principal.user_id).on_conflict_ignore().execute()
        self._known.add(principal.user_id)
