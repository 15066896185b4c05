"""prometheus-client's multiprocess mode, as the API (under gunicorn) and the worker (under the
``dramatiq`` CLI) both use it: each process writes its metrics to files in one directory, and a
scrape sums them.

prometheus-client picks where values live when it is first imported, from the variable
:data:`MULTIPROC_DIR_ENV`; files an earlier run left there would be summed in, so each run
empties the directory before its processes write to it. This module must not import
prometheus-client.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The directory of the per-process metric files; unset means one process, values in memory.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of the per-process metric files, when processes share one."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def use_metrics_dir(directory: Path) -> None:
    """Make this process (and those it starts) write its metrics to ``directory``."""
    if "prometheus_client" in sys.modules:
        # It chose where values live at import: ours would stay out of the sums.
        raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_DIR_ENV} was set")
    os.environ[MULTIPROC_DIR_ENV] = str(directory)


def empty_metrics_dir(directory: Path) -> None:
    """Remove the metric files in ``directory`` (made if missing): a run starts from zero."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
