"""What waits on a StubBroker's queues, read without consuming it."""

from __future__ import annotations

import dramatiq

from tribe_shared.contract import Queue


def queued_messages(broker, queue: str = Queue.EMAILS) -> list[dramatiq.Message]:
    """The messages waiting on a stub broker's queue, in the order workers would take them."""
    return [dramatiq.Message.decode(data) for data in list(broker.queues[str(queue)].queue)]
