"""The unsubscribe links live in the shared package (:mod:`tribe_shared.emails.unsubscribe_links`):
a preview carries the very links the email will."""

from tribe_shared.emails.unsubscribe_links import ONE_CLICK, Link, UnsubscribeLinks

__all__ = ["ONE_CLICK", "Link", "UnsubscribeLinks"]
