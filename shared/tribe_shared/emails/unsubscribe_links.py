"""The unsubscribe link of an update or digest email, and its RFC 8058 headers.

``List-Unsubscribe`` holds the HTTPS URL of this API's unsubscribe route with a signed token
naming the recipient and the group (:mod:`tribe_shared.unsubscribe`), and a ``mailto:`` when
``UNSUBSCRIBE_MAILTO`` is set (its subject carries the token, for whoever reads that mailbox);
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` tells mail providers that one POST to the
URL unsubscribes. The same URL, opened in a browser, shows the confirm page: the emails' own
"Unsubscribe" link.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from tribe_shared.unsubscribe import Scope, UnsubscribeTokens, unsubscribe_url

ONE_CLICK = ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
#: The Tribe app's page where a recipient mutes these emails (the app serves it, not this API).
MUTE_URL = "{base}/recipients/{recipient_id}/mute"


@dataclass(frozen=True)
class Link:
    url: str
    headers: tuple[tuple[str, str], ...]


class UnsubscribeLinks:
    def __init__(self, tokens: UnsubscribeTokens, api_public_url: str, mailto: str | None = None):
        self._tokens = tokens
        self._api = api_public_url
        self._mailto = mailto

    def link(self, recipient_id: uuid.UUID, group_id: uuid.UUID, now: datetime) -> Link:
        token = self._tokens.sign(recipient_id, group_id, Scope.GROUP, now)
        url = unsubscribe_url(self._api, token)
        targets = [f"<{url}>"]
        if self._mailto:
            targets.append(f"<mailto:{self._mailto}?subject={quote('unsubscribe ' + token)}>")
        return Link(url, (("List-Unsubscribe", ", ".join(targets)), ONE_CLICK))
