"""Bulk retry and cancel as the API and the console ask for them: counted, recorded, and handed
to the worker's ``run_bulk_action`` actor, which does them in bounded batches
(:mod:`tribe_shared.bulk`).

Without a broker (development without Redis) the action runs in the request itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import dramatiq
import falcon

from tribe_api.errors import Code
from tribe_shared import bulk
from tribe_shared.contract import Actor, Queue
from tribe_shared.models import BulkAction
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import BROKER_DOWN_ERRORS

log = logging.getLogger(__name__)


class BulkActions:
    """Asks for bulk actions and reads their progress."""

    def __init__(self, outbox: Outbox, clock: Callable[[], datetime]):
        self._outbox = outbox
        self._clock = clock

    def count(self, kind: str, filters: dict) -> int:
        return bulk.count(kind, filters)

    def ask(self, kind: str, filters: dict, requested_by: str) -> BulkAction:
        """Record the action and hand it to the worker (a 503 when the broker is down: the
        action is then recorded as failed, and nothing was done)."""
        action = bulk.start(kind, filters, requested_by, self._clock())
        broker = self._outbox.broker
        if broker is None:
            return bulk.run(action.id, self._outbox, self._clock)
        message = dramatiq.Message(
            queue_name=Queue.MAINTENANCE.value,
            actor_name=Actor.RUN_BULK_ACTION.value,
            args=(str(action.id),),
            kwargs={},
            options={},
        )
        try:
            broker.enqueue(message)
        except BROKER_DOWN_ERRORS as exc:
            log.warning("bulk %s %s not handed over: %s", kind, action.id, exc)
            BulkAction.update(
                status=bulk.BulkStatus.FAILED, error="the broker is unreachable"
            ).where(BulkAction.id == action.id).execute()
            raise falcon.HTTPServiceUnavailable(
                title="Service unavailable",
                description="The broker is unreachable: nothing was done; try again",
                code=Code.SERVICE_UNAVAILABLE,
                headers={"Retry-After": "5"},
            ) from None
        return action


def present_action(action: BulkAction) -> dict:
    return {
        "id": action.id,
        "action": action.action,
        "status": action.status,
        "filters": action.filters,
        "matched": action.matched,
        "acted": action.acted,
        "requested_by": action.requested_by,
        "created_at": action.created_at,
        "finished_at": action.finished_at,
        "error": action.error,
    }
