"""Calls made at the same instant from several threads, for races the code must survive."""

from __future__ import annotations

import threading
from collections.abc import Callable


def concurrently(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at the same instant, one thread each; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results
