"""Waiting without spending a retry: the :class:`Deferred` exception and the middleware that
honours it.

A delivery that meets a closed gate (the rate limit, an open circuit), a digest whose schedule
has an earlier digest still to finish, or a database that cannot be reached has done nothing
wrong: its message goes back to the broker after a delay with its retry count unchanged, and its
jobs wait. The actor says so by raising :class:`Deferred`; :class:`Deferrals`, which takes the
place of Dramatiq's ``Retries`` middleware, puts the message back, and hands every other
exception to ``Retries`` as before — the way Dramatiq keeps retrying out of actor bodies.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import dramatiq
from dramatiq.middleware import Retries

log = logging.getLogger(__name__)


class Deferred(dramatiq.Retry):
    """Try this message again after ``delay_ms`` without counting a retry.

    ``delay_ms`` None: the middleware's default wait (the database was unreachable). A
    :class:`dramatiq.Retry` so that the worker does not log it as an unhandled error.
    """

    def __init__(self, reason: str, delay_ms: int | None = None):
        super().__init__(f"deferred: {reason}", delay=delay_ms)
        self.reason = reason


class Deferrals(Retries):
    """Dramatiq's ``Retries``, which also puts a :class:`Deferred` message back as it was.

    ``outage_delay`` gives the wait, in milliseconds, of a message deferred without one: long
    enough for a database restart, spread so that a backlog does not come back all at once.
    """

    def __init__(self, *, outage_delay: Callable[[], int], **options):
        super().__init__(**options)
        self.outage_delay = outage_delay

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not isinstance(exception, Deferred):
            super().after_process_message(broker, message, result=result, exception=exception)
            return
        delay = exception.delay if exception.delay is not None else self.outage_delay()
        if exception.delay is None:
            log.warning(
                "%s delivery deferred %d ms: %s", message.actor_name, delay, exception.reason
            )
        # The copy keeps its ``retries`` option: waiting is not a retry.
        broker.enqueue(message, delay=delay)


def outage_delay(poll_seconds: float) -> Callable[[], int]:
    """A wait of one to two relay polls, in ms: the database is usually back by then."""
    return lambda: int(poll_seconds * 1000 * random.uniform(1.0, 2.0))


def use_deferrals(broker: dramatiq.Broker, *, max_retries: int, outage_delay_ms) -> Deferrals:
    """Put :class:`Deferrals` where the broker's ``Retries`` middleware is (or add it)."""
    deferrals = Deferrals(max_retries=max_retries, outage_delay=outage_delay_ms)
    for index, middleware in enumerate(broker.middleware):
        if type(middleware) is Retries:
            broker.middleware[index] = deferrals
            return deferrals
    broker.add_middleware(deferrals)
    return deferrals
