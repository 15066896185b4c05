"""One SIGTERM is one shutdown request, however many copies of it arrive.

Platforms that stop a process tree signal every process in it at once (Heroku's "Stopping all
processes with SIGTERM", ``kill -TERM -<pgid>``, systemd's default ``KillMode``). The dramatiq
main process then forwards the same SIGTERM to its worker processes, which take a second SIGTERM
as "kill now" and exit without finishing or requeueing the messages they hold. A worker process
therefore ignores a SIGTERM that repeats one received moments before; a later one still kills.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

#: A SIGTERM this soon after the previous one is the same request arriving twice.
ECHO_SECONDS = 2.0


def ignore_echoed_sigterm(clock: Callable[[], float] = time.monotonic) -> bool:
    """Wrap this process's Python SIGTERM handler, if it has one; return whether it did.

    Call it from the main thread of a dramatiq worker process (the broker module is imported
    there after dramatiq installed its handler); elsewhere there is no Python handler and
    nothing changes.
    """
    handler = signal.getsignal(signal.SIGTERM)
    if not callable(handler):
        return False
    honoured: list[float] = []

    def once_per_request(signum, frame):
        now = clock()
        if honoured and now - honoured[-1] < ECHO_SECONDS:
            return
        honoured.append(now)
        handler(signum, frame)

    signal.signal(signal.SIGTERM, once_per_request)
    return True
