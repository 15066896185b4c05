"""One metrics directory per ``dramatiq`` run: Dramatiq's ``dramatiq_prom_db``, wiped at start.

Dramatiq's Prometheus middleware turns on prometheus-client's multiprocess mode only in its
``after_process_boot``, after our modules are imported, and never empties its directory (its
docstring says it does; 2.2.1 only creates it). prometheus-client picks its value class when it
is first imported, so a worker process must point ``PROMETHEUS_MULTIPROC_DIR`` at that directory
before anything imports it: then our ``tribe_*`` metrics and the middleware's ``dramatiq_*`` ones
share the directory and its exposition server (``dramatiq_prom_port``) sums them all.

Files left by an earlier run would be summed in too, and the worker processes of one run boot
concurrently, so the first of them to get here empties the directory and marks it with the run's
identity (its parent, the ``dramatiq`` main process); the others see the mark and keep the files.
This module must not import prometheus-client.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sys
from pathlib import Path

from tribe_shared.metrics_dir import empty_metrics_dir, use_metrics_dir

#: Marks which ``dramatiq`` run the directory's files belong to.
RUN_MARK = ".tribe-run"


def is_dramatiq_worker_process() -> bool:
    """Whether this process was started by the ``dramatiq`` CLI as one of its worker processes
    (the scheduler and the ``dramatiq`` main process are not)."""
    return multiprocessing.parent_process() is not None


def use_dramatiq_metrics_dir(run: str | None = None) -> Path:
    """Make this process write its metrics to ``dramatiq_prom_db``; empty it once per ``run``.

    ``run`` identifies the ``dramatiq`` run (default: the parent process and its start time).
    Returns the directory.
    """
    from dramatiq.middleware.prometheus import DB_PATH  # creates the directory

    directory = Path(DB_PATH)
    if "prometheus_client" not in sys.modules:
        prepare_metrics_dir(directory, run or _parent_run())
    use_metrics_dir(directory)
    return directory


def prepare_metrics_dir(directory: Path, run: str) -> bool:
    """Remove the metric files of other runs from ``directory``; return whether it did.

    Only the first caller of a ``run`` removes anything; the rest find the run's mark.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / RUN_MARK, "a+") as mark:
        fcntl.flock(mark, fcntl.LOCK_EX)
        mark.seek(0)
        if mark.read().strip() == run:
            return False
        empty_metrics_dir(directory)
        mark.seek(0)
        mark.truncate()
        mark.write(run)
        mark.flush()
        return True


def _parent_run() -> str:
    """The parent's pid and start time: a container restart reuses pids, not start times."""
    parent = os.getppid()
    try:
        # Field 22 of /proc/<pid>/stat, counted after the parenthesised command name.
        stat = Path(f"/proc/{parent}/stat").read_text()
        started = stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "?"
    return f"{parent}:{started}"
