"""Running a bench safely: loopback only, one run at a time, cleanup whatever ends the run."""

from __future__ import annotations

import fcntl
import ipaddress
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


class BenchError(Exception):
    """A bench cannot go on; the message says why (printed, exit status 1)."""


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def single_run_lock(database: str):
    """An exclusive lock for the run, as two runs would share, and drop, the same database;
    when another run holds it, says so and exits (status 2). Keep the returned handle: the lock
    lasts as long."""
    handle = open(Path(tempfile.gettempdir()) / f"tribe-{database}.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        print(f"another run is using {database!r}: wait for it", file=sys.stderr)
        raise SystemExit(2) from None
    return handle


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def trap_signals() -> None:
    """Ctrl-C and SIGTERM both end the run through the caller's cleanup (also when started in
    the background, where a shell leaves SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def ignore_signals() -> None:
    """While cleaning up: a second Ctrl-C must not cut the cleanup short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def restore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_guarded(work: Callable[[], None], cleanup: Callable[[], None], workdir: Path) -> int:
    """Run ``work``, then ``cleanup`` however it ended; the exit status of the bench.

    A :class:`BenchError` is reported (1), Ctrl-C or SIGTERM ends the run quietly (130), and
    neither signal can interrupt ``cleanup``. The processes' logs in ``workdir`` are kept when
    the run failed, to read why; otherwise removed.
    """
    trap_signals()
    failed = True
    try:
        work()
        failed = False
        return 0
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, cleaning up", file=sys.stderr)
        failed = False
        return 130
    finally:
        ignore_signals()
        cleanup()
        if failed:
            print(f"process logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        restore_signals()
